"""Checks of training settings, in messages that name the command-line option
(``--log-every must be >= 1``), for the config dataclasses' ``__post_init__``."""

from __future__ import annotations

from pathlib import Path

from shared.cli import output_folder_problem


def option(field: str) -> str:
    """The command-line option of a config field: ``log_every`` -> ``--log-every``."""
    return "--" + field.replace("_", "-")


def require_at_least(config: object, minimum: float, *fields: str) -> None:
    """``ValueError`` when one of ``fields`` of ``config`` is below ``minimum``."""
    for field in fields:
        if not getattr(config, field) >= minimum:  # ``not >=``: NaN fails too
            raise ValueError(f"{option(field)} must be >= {minimum}, not {getattr(config, field)}")


def require_output_folder(path: str, field: str = "out") -> None:
    """``ValueError`` when ``path`` exists and is not a folder."""
    if problem := output_folder_problem(path):
        raise ValueError(f"{option(field)} {problem}")


def require_file(path: str, field: str) -> None:
    """``ValueError`` when a given (non-empty) ``path`` is not an existing file."""
    if path and not Path(path).is_file():
        what = "a folder, not a file" if Path(path).is_dir() else "no such file"
        raise ValueError(f"{option(field)} {path}: {what}")
