"""A receiver that stalls (subscribes, never reads) or leaves does not hurt the others: the
healthy receiver gets every frame, in sync, with low latency."""

import json
import time

import zmq

from tests.test_end_to_end import (
    free_port,
    receiver_args,
    sample_sender_args,
    start,
    wait_until_listening,
)


def test_stalled_and_leaving_receivers_do_not_affect_a_healthy_one(
    tmp_path, tiny_model_path, subprocess_env
):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    context = zmq.Context()
    stalled = context.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 2)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(address)
    leaving = context.socket(zmq.SUB)
    leaving.setsockopt(zmq.SUBSCRIBE, b"")
    leaving.connect(address)
    healthy = start(
        "receiver",
        receiver_args(address, tiny_model_path, tmp_path / "rx", "--idle-timeout", "30"),
        subprocess_env,
    )
    wait_until_listening(healthy)
    sender = start(
        "sender",
        sample_sender_args(address, tiny_model_path, "320x240", 8, "--loop"),
        subprocess_env,
    )
    try:
        time.sleep(4)
        leaving.close(linger=0)  # a receiver leaves mid-stream
        sender_out, sender_err = sender.communicate(timeout=60)
        _, healthy_err = healthy.communicate(timeout=60)
    finally:
        for process in (sender, healthy):
            if process.poll() is None:
                process.kill()
        stalled.close(linger=0)
        context.term()
    assert sender.returncode == 0, sender_err
    assert healthy.returncode == 0, healthy_err
    sent = json.loads(sender_out.split("sender summary: ", 1)[1].splitlines()[0])["frames"]
    summary = json.loads((tmp_path / "rx" / "summary.json").read_text())
    assert summary["frames"] + summary["skipped_frames"] == sent
    assert summary["lost_frames"] == 0 and summary["unreferenced_frames"] == 0
    assert summary["latency_ms_p95"] < 500, summary
