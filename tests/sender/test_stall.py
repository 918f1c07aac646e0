"""A stalled receiver never makes the sender's memory grow (ZeroMQ's send high-water mark
drops what a subscriber does not read): 2 minutes at 30 fps into a SUB socket that
subscribes and then never reads."""

import subprocess
import sys
import time

import pytest
import zmq

from tests.conftest import ROOT
from tests.test_end_to_end import free_port

SECONDS = 125


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB; ``None`` once it has exited (a zombie's status
    has no VmRSS line)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


@pytest.mark.slow
def test_sender_memory_stays_flat_with_a_stalled_receiver(tiny_model_path, subprocess_env):
    port = free_port()
    context = zmq.Context()
    stalled = context.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 4)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")  # frames and the PNG references: the most data
    stalled.connect(f"tcp://127.0.0.1:{port}")
    sender = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sender",
            "--source",
            "sample",
            "--size",
            "320x240",
            "--fps",
            "30",
            "--loop",
            "--duration",
            str(SECONDS),
            "--model",
            str(tiny_model_path),
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--threads",
            "1",
            "--quiet",
            "--stats-json",
            "/dev/stdout",
        ],
        env=subprocess_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(10)  # start-up, model loaded, the queues filled
        start = rss_mib(sender.pid)
        assert start is not None, "the sender exited during start-up"
        peak = start
        while sender.poll() is None:
            rss = rss_mib(sender.pid)
            if rss is None:  # exited between poll() and the read
                break
            peak = max(peak, rss)
            time.sleep(1)
        out, err = sender.communicate(timeout=30)
    finally:
        if sender.poll() is None:
            sender.kill()
        stalled.close(linger=0)
        context.term()
    assert sender.returncode == 0, err
    assert '"fps"' in out
    fps = float(out.split('"fps":')[1].split(",")[0])
    assert fps >= 29.0, out
    assert peak - start < 50, (start, peak)
