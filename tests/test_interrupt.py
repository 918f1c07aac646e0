"""Ctrl-C before the main loop (loading a model, warming up, connecting) ends a CLI with one
line and exit status 130, not a traceback; inside the loop the summary is still written
(see the end-to-end tests)."""

import signal
import subprocess
import sys
import time

from tests.test_end_to_end import free_port


def interrupt_after(command: list[str], first_line: str, env: dict) -> tuple[int, str]:
    """Start ``python -m ...``, wait for ``first_line`` on stdout, send SIGINT."""
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    line = process.stdout.readline()
    while first_line not in line and time.monotonic() < deadline and line:
        line = process.stdout.readline()
    assert first_line in line, line
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr


def test_ctrl_c_during_the_senders_warm_up(image_folder, subprocess_env):
    code, stderr = interrupt_after(
        [
            "sender",
            "--source",
            str(image_folder),
            "--fps",
            "10",
            "--warmup",
            "30",
            "--bind",
            f"tcp://127.0.0.1:{free_port()}",
            "--feedback",
            "off",
        ],
        "sender:",
        subprocess_env,
    )
    assert code == 130 and "Traceback" not in stderr
    assert stderr.strip() == "sender: interrupted before streaming began"
