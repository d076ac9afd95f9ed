"""Exception types shared by vaelib, the CLI and the report runner."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input. Message: "<file or value>: <problem>; expected <what>".

    The CLI prints it on one line and exits with status 2.
    """


class NotebookError(RuntimeError):
    """A report notebook failed to execute; the message names the notebook and the cell."""
