"""A receiver that joins a running stream of predicted frames asks for a key frame and
shows a correct picture within 0.5 s; one that stays in sync is not disturbed."""

import time

from tests.test_end_to_end import (
    free_port,
    read_run,
    receiver_args,
    sample_sender_args,
    start,
    wait_until_listening,
)


def test_late_joiner_gets_a_key_frame_promptly(tmp_path, tiny_model_path, subprocess_env):
    address = f"tcp://127.0.0.1:{free_port()}"
    early = start(
        "receiver",
        receiver_args(
            address, tiny_model_path, tmp_path / "early", "--duration", "9", "--decode-all"
        ),
        subprocess_env,
    )
    wait_until_listening(early)
    sender = start(
        "sender",
        sample_sender_args(
            address, tiny_model_path, "176x144", 8, "--loop", "--keyframe-interval", "100000"
        ),
        subprocess_env,
    )
    time.sleep(3.5)  # the stream is running: only predicted frames now
    late = start(
        "receiver",
        receiver_args(address, tiny_model_path, tmp_path / "late", "--duration", "3"),
        subprocess_env,
    )
    for process in (late, sender, early):
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    summary, records = read_run(tmp_path / "late")
    early_summary, early_records = read_run(tmp_path / "early")
    assert records[0]["kind"] == "key"
    assert summary["time_to_first_picture_ms"] < 500, summary
    early_psnr = early_summary["psnr_db"]
    assert summary["frames"] >= 20 and abs(summary["psnr_db"] - early_psnr) < 1.0, early_psnr
    # After its key frame it follows the predicted frames without another one.
    assert [r["kind"] for r in records[1:]].count("key") == 0
    assert summary["unreferenced_frames"] <= 10
    assert early_records[0]["kind"] == "key"
    assert early_summary["unreferenced_frames"] == 0 and early_summary["lost_frames"] == 0
    # The late join cost the early receiver one extra key frame and no lost picture.
    assert [r["kind"] for r in early_records].count("key") == 2
