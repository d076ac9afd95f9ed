import pytest

from vaelib.errors import InputError
from vaelib.profiles import PROFILE_NAMES, PROFILES, default_profile, resolve


def test_every_stem_has_both_profiles_with_the_same_keys():
    for stem, table in PROFILES.items():
        assert set(table) == set(PROFILE_NAMES), stem
        assert set(table["smoke"]) == set(table["full"]), stem


def test_resolve_merges_explicit_non_none_values():
    p = resolve("01_vae", "smoke", epochs=None, lr=0.01, extra=3)
    assert (p.profile, p.epochs, p.lr, p.extra, p.n_train) == ("smoke", 2, 0.01, 3, 1024)
    assert resolve("01_vae", "full").n_train is None


def test_resolve_errors_list_valid_names():
    with pytest.raises(InputError, match="00_data"):
        resolve("99_nope", "full")
    with pytest.raises(InputError, match="smoke, full"):
        resolve("01_vae", "medium")


def test_default_profile(monkeypatch):
    monkeypatch.setenv("VAELIB_PROFILE", "full")
    assert default_profile() == "full"
    monkeypatch.delenv("VAELIB_PROFILE")
    assert default_profile() == "full"
    monkeypatch.setenv("VAELIB_PROFILE", "tiny")
    with pytest.raises(InputError, match="VAELIB_PROFILE"):
        default_profile()
