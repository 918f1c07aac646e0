"""A receiver that joins a running stream of predicted frames asks for a key frame and
shows a correct picture within 0.5 s; one that stays in sync is not disturbed."""

import json
import time

from tests.test_end_to_end import free_port, start, wait_until_listening


def test_late_joiner_gets_a_key_frame_promptly(tmp_path, tiny_model_path, subprocess_env):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    receiver_args = ["--connect", address, "--model", str(tiny_model_path), "--threads", "1"]
    early = start(
        "receiver",
        [
            *receiver_args,
            "--duration",
            "9",
            "--out",
            str(tmp_path / "early"),
            "--quiet",
            "--decode-all",
        ],
        subprocess_env,
    )
    wait_until_listening(early)
    sender = start(
        "sender",
        [
            "--bind",
            address,
            "--source",
            "sample",
            "--size",
            "176x144",
            "--fps",
            "20",
            "--loop",
            "--duration",
            "8",
            "--model",
            str(tiny_model_path),
            "--threads",
            "1",
            "--keyframe-interval",
            "100000",
            "--quiet",
        ],
        subprocess_env,
    )
    time.sleep(3.5)  # the stream is running: only predicted frames now
    late = start(
        "receiver",
        [*receiver_args, "--duration", "3", "--out", str(tmp_path / "late"), "--quiet"],
        subprocess_env,
    )
    for process in (late, sender, early):
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    summary = json.loads((tmp_path / "late" / "summary.json").read_text())
    late_lines = (tmp_path / "late" / "frames.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in late_lines]
    assert records[0]["kind"] == "key"
    assert summary["time_to_first_picture_ms"] < 500, summary
    early_psnr = json.loads((tmp_path / "early" / "summary.json").read_text())["psnr_db"]
    assert summary["frames"] >= 20 and abs(summary["psnr_db"] - early_psnr) < 1.0, early_psnr
    # After its key frame it follows the predicted frames without another one.
    assert [r["kind"] for r in records[1:]].count("key") == 0
    assert summary["unreferenced_frames"] <= 10
    early_records = [
        json.loads(x) for x in (tmp_path / "early" / "frames.jsonl").read_text().splitlines()
    ]
    early_summary = json.loads((tmp_path / "early" / "summary.json").read_text())
    assert early_records[0]["kind"] == "key"
    assert early_summary["unreferenced_frames"] == 0 and early_summary["lost_frames"] == 0
    # The late join cost the early receiver one extra key frame and no lost picture.
    assert [r["kind"] for r in early_records].count("key") == 2
