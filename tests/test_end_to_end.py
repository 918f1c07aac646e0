"""A real sender and a real receiver as separate OS processes on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import msgpack
import pytest
import zmq

from benchmarks.stream import free_port_pair
from shared import wire
from shared.codec import ImageCodec, configure_threads
from shared.metrics import psnr
from shared.video import VideoDecoder, VideoEncoder
from tests.conftest import make_model_file

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free TCP port ``p`` on 127.0.0.1 whose next port is free too (a sender's feedback
    channel binds ``p + 1``), and neither handed out before in this process (two calls in a
    row may otherwise get ``p`` and ``p + 1``, and the first sender's feedback takes the
    second's port: a CI run failed so)."""
    port = free_port_pair(_HANDED_OUT)
    _HANDED_OUT.update((port, port + 1))
    return port


def start(module: str, args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_listening(process: subprocess.Popen) -> str:
    """Block until the receiver prints its start line (model loaded, socket subscribed)."""
    line = process.stdout.readline()
    assert line.startswith("receiver:"), line + process.stderr.read()
    time.sleep(0.3)  # let the subscription reach the publisher
    return line


def sample_sender_args(address: str, model, size: str, duration: float, *extra: str):
    """A quiet one-thread sender of the embedded sample clip at 20 fps."""
    return [
        *("--bind", address, "--source", "sample", "--size", size, "--fps", "20"),
        *("--duration", str(duration), "--model", str(model), "--threads", "1", "--quiet"),
        *extra,
    ]


def receiver_args(address: str, model, out, *extra: str) -> list[str]:
    """A quiet one-thread receiver that writes its records to ``out``."""
    return [
        *("--connect", address, "--model", str(model), "--threads", "1", "--quiet"),
        *("--out", str(out), *extra),
    ]


def read_run(out) -> tuple[dict, list[dict]]:
    """A receiver's ``summary.json`` and its ``frames.jsonl`` records."""
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    return summary, records


def run_pair(tmp_path, env, sender_args, receiver_args, port=None):
    port = port or free_port()
    out = tmp_path / "rx"
    receiver = start(
        "receiver",
        [
            "--connect",
            f"tcp://127.0.0.1:{port}",
            "--idle-timeout",
            "60",
            "--out",
            str(out),
            "--threads",
            "1",
            "--decode-all",
            *receiver_args,
        ],
        env,
    )
    wait_until_listening(receiver)
    sender = start(
        "sender",
        ["--bind", f"tcp://127.0.0.1:{port}", "--threads", "1", "--warmup", "1.0", *sender_args],
        env,
    )
    sender_out, sender_err = sender.communicate(timeout=120)
    receiver_out, receiver_err = receiver.communicate(timeout=120)
    assert sender.returncode == 0, sender_err
    assert receiver.returncode == 0, receiver_err
    return out, sender_out, receiver_out, receiver_err


def test_stream_reports_true_psnr(tmp_path, image_folder, tiny_model_path, subprocess_env):
    out, sender_out, receiver_out, _ = run_pair(
        tmp_path,
        subprocess_env,
        [
            "--source",
            str(image_folder),
            "--model",
            str(tiny_model_path),
            "--fps",
            "20",
            "--quality",
            "1",
        ],
        ["--model", str(tiny_model_path)],
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6
    assert summary["rejected"] == {} and summary["lost_frames"] == 0
    assert summary["kbps"] > 0 and summary["fps"] > 0
    assert summary["latency_ms_p50"] is not None and summary["latency_ms_p50"] >= 0
    assert "receiver summary:" in receiver_out and "sender summary:" in sender_out
    # The receiver's join (a key-frame request) reached the sender over the feedback channel.
    sender_summary = json.loads(sender_out.split("sender summary: ", 1)[1].splitlines()[0])
    assert sender_summary["receivers_heard"] == 1 and sender_summary["keyframe_requests"] >= 1

    # Offline: code the same images with the same model, threads and precision as the two
    # processes' defaults, and compare PSNR and bits.
    configure_threads(0)
    codec = ImageCodec.load(str(tiny_model_path), "cpu", "auto")
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(6))
    assert records[0]["kind"] == "key"
    files = sorted(image_folder.iterdir())
    encoder, decoder = VideoEncoder(codec), VideoDecoder(codec)
    for seq, (record, path) in enumerate(zip(records, files, strict=True)):
        if record["kind"] == "key":  # the join's key-frame request may land on any frame
            encoder.request_key_frame()
        bgr = cv2.imread(str(path))
        coded = encoder.encode(bgr, 1, "bgr")
        assert coded.kind == record["kind"]
        decoded = decoder.decode(coded, seq)
        expected = psnr(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), decoded.rgb)
        assert record["payload_bytes"] == len(coded.payload)
        assert record["psnr_db"] == pytest.approx(expected, abs=1e-6)
        assert record["zero_share"] == pytest.approx((decoded.latents == 0).mean())
    bits = 8 * sum(r["payload_bytes"] for r in records)
    assert summary["bpp"] == pytest.approx(bits / (6 * 144 * 176))
    side = cv2.imread(str(out / "side_by_side.png"))
    assert side.shape == (144, 2 * 176, 3)


def test_model_mismatch_is_reported_not_fatal(
    tmp_path, image_folder, tiny_model_path, subprocess_env
):
    other = make_model_file(tmp_path / "other.safetensors", seed=5)
    out, _, receiver_out, receiver_err = run_pair(
        tmp_path,
        subprocess_env,
        ["--source", str(image_folder), "--model", str(tiny_model_path), "--fps", "30"],
        ["--model", str(other)],
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 0
    assert summary["rejected"] == {"model_mismatch": 6}
    assert "coded with model" in receiver_err and "--model" in receiver_err
    assert receiver_err.count("warning") == 1


def test_protocol_version_mismatch_is_reported(tmp_path, tiny_model_path, subprocess_env):
    port = free_port()
    context = zmq.Context.instance()
    publisher = context.socket(zmq.PUB)
    publisher.bind(f"tcp://127.0.0.1:{port}")
    receiver = start(
        "receiver",
        [
            "--connect",
            f"tcp://127.0.0.1:{port}",
            "--model",
            str(tiny_model_path),
            "--duration",
            "4",
            "--out",
            str(tmp_path / "rx"),
        ],
        subprocess_env,
    )
    wait_until_listening(receiver)
    body = {"v": 99, "t": "frame", "stream": "x", "seq": 0}
    for _ in range(5):
        publisher.send_multipart([wire.TOPIC_FRAME, msgpack.packb(body)])
        publisher.send_multipart([wire.TOPIC_FRAME, b"\xc1garbage"])
        time.sleep(0.05)
    _, err = receiver.communicate(timeout=60)
    publisher.close(linger=0)
    assert receiver.returncode == 0, err
    summary = json.loads((tmp_path / "rx" / "summary.json").read_text())
    assert summary["rejected"] == {"protocol_version": 5, "bad_msgpack": 5}
    assert "protocol version 99" in err


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("sender", ["--source", "/no/such/file.mp4"], "unknown source"),
        ("sender", ["--source", "7"], "camera 7 is not available"),
        ("sender", ["--model", "/no/model.safetensors"], "not found"),
        ("sender", ["--bind", "nonsense://x"], "cannot bind"),
        ("sender", ["--size", "12by3"], "size must look like"),
        ("sender", ["--quality", "99", "--source", "sample"], "quality level"),
        ("receiver", ["--connect", "not-an-address"], "not an address"),
        ("receiver", ["--model", "/no/model.safetensors"], "not found"),
    ],
)
def test_cli_mistakes_give_one_line_and_nonzero_exit(module, args, message, subprocess_env):
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # argparse adds its usage line


def test_busy_port_is_a_clear_error(tmp_path, subprocess_env):
    port = free_port()
    holder = zmq.Context.instance().socket(zmq.PUB)
    holder.bind(f"tcp://127.0.0.1:{port}")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sender", "--bind", f"tcp://127.0.0.1:{port}"],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close(linger=0)
    assert result.returncode == 2
    assert "Address already in use" in result.stderr and "Traceback" not in result.stderr


def test_receiver_exits_on_its_own_when_nothing_arrives(tiny_model_path, subprocess_env):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver",
            "--connect",
            f"tcp://127.0.0.1:{free_port()}",
            "--model",
            str(tiny_model_path),
            "--idle-timeout",
            "3.5",
        ],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1  # for scripts: not a single frame
    assert "nothing received" in result.stderr
    assert "no connection to" in result.stderr  # and why, after 3 s
    assert "frames    0" in result.stdout  # the summary is still printed
