"""Command-line helpers shared by every ``python -m ...`` entry point."""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def probability(text: str) -> float:
    """An argparse type: a float in 0..1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in 0..1, not {text!r}")
    return value


def _at_least(convert, low: float, strict: bool, what: str):
    """An argparse type: ``convert(text)``, finite and above ``low`` (or at least ``low``
    unless ``strict``); the error says ``must be {what}``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not (value > low if strict else value >= low):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value

    parse.__doc__ = f"An argparse type: {what}."
    return parse


positive_int = _at_least(int, 0, True, "an integer >= 1")
non_negative_int = _at_least(int, 0, False, "an integer >= 0")
positive_float = _at_least(float, 0.0, True, "a number > 0")
non_negative_float = _at_least(float, 0.0, False, "a number >= 0")


def device_name(text: str) -> str:
    """An argparse type: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (the devices the codec
    runs on; whether CUDA is present is checked when the model loads)."""
    if text in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, not {text!r}")


def zmq_address(text: str) -> str:
    """An argparse type: a ZeroMQ endpoint; a ``tcp://`` one must end in a port 1..65535
    (or ``*``, any free port), which libzmq would otherwise wrap around silently."""
    if text.startswith("tcp://"):
        host, _, port = text[len("tcp://") :].rpartition(":")
        if not host or not (port == "*" or (port.isdigit() and 1 <= int(port) <= 65535)):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not tcp://HOST:PORT with a port in 1..65535"
            )
    elif "://" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address like tcp://HOST:PORT")
    return text


def feedback_option(text: str) -> str:
    """An argparse type: ``auto``, ``off`` or a ZeroMQ address (``zmq_address``)."""
    return text if text in ("auto", "off") else zmq_address(text)


def prepare_output_folder(path: str | Path, option: str) -> Path:
    """Create the folder ``path`` (and its parents) at start-up, so that a run does not find
    out only at its end that it cannot write its results; ``ValueError`` names ``option``."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{option} {folder} is a file, not a folder") from None
    except OSError as error:
        raise ValueError(f"{option}: cannot create folder {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option}: folder {folder} is not writable")
    return folder


def output_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be written as a file (a folder, in a missing or read-only folder,
    read-only itself), or ``None``."""
    file = Path(path)
    if file.is_dir():
        return f"{file} is a folder, not a file"
    if not file.parent.is_dir():
        return f"folder {file.parent} does not exist"
    if not os.access(file.parent, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
        return f"{file} is not writable"
    return None


def output_folder_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be an output folder (it is a file), or ``None``."""
    if Path(path).exists() and not Path(path).is_dir():
        return f"{path} is a file, not a folder"
    return None


def check_output_file(path: str | Path, option: str) -> None:
    """Raise ``ValueError`` (naming ``option``) at start-up when ``path`` cannot be written
    (``output_file_problem``)."""
    if problem := output_file_problem(path):
        raise ValueError(f"{option}: {problem}")


def existing_file(text: str) -> str:
    """An argparse type: a file that exists (not a folder)."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return text


def file_to_write(text: str) -> str:
    """An argparse type: a file path that can be written (``output_file_problem``)."""
    if problem := output_file_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def folder_to_write(text: str) -> str:
    """An argparse type: an output folder, made if missing, so not a file."""
    if problem := output_folder_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


@contextmanager
def stop_on_signals() -> Iterator[dict]:
    """Within the block, SIGINT and SIGTERM set ``flag["stop"] = True`` instead of raising,
    so a main loop can finish its current frame and write its summary."""
    flag = {"stop": False}

    def request_stop(signum, frame) -> None:
        flag["stop"] = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
