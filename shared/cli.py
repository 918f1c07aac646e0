"""Command-line helpers shared by every ``python -m ...`` entry point."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
