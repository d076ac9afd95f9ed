"""The test session set-up lives in ../conftest.py (the repository root), so notebooks run alone get it too."""
