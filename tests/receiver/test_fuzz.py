"""Fuzzing a live receiver process: 100,000 random and mutated messages over ZeroMQ.

The receiver must not crash or hang, its memory must stay bounded, every reject is counted
with a reason, and a valid stream afterwards still decodes to the right picture.
"""

import json
import random
import time

import msgpack
import numpy as np
import torch
import zmq

from shared import wire
from shared.codec import ImageCodec
from shared.metrics import psnr
from tests.conftest import natural_like_image
from tests.test_end_to_end import free_port, start, wait_until_listening

MESSAGES = 100_000


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def mutations(valid_frame: list[bytes], valid_reference: list[bytes], seed: int = 0):
    """Yields hostile multipart messages, forever, from a seeded generator."""
    rng = random.Random(seed)
    body = msgpack.unpackb(valid_frame[1])
    wrong_values = [None, -1, 2**64 - 1, -(2**63), 1.5, "x" * 2000, b"\x00" * 9, [1] * 70, True]

    def packed(fields: dict, topic: bytes = wire.TOPIC_FRAME) -> list[bytes]:
        return [topic, msgpack.packb(fields, use_bin_type=True)]

    while True:
        kind = rng.randrange(10)
        if kind == 0:  # random bytes, wrong framing, topics that only share a prefix
            yield rng.choice(
                [
                    [rng.randbytes(rng.randrange(0, 300)) for _ in range(rng.randrange(1, 4))],
                    [wire.TOPIC_FRAME, valid_frame[1], b"extra part"],
                    [wire.TOPIC_FRAME],
                    [wire.TOPIC_FRAME + rng.randbytes(3), valid_frame[1]],
                ]
            )
        elif kind == 1:  # truncated
            raw = valid_frame[1]
            yield [wire.TOPIC_FRAME, raw[: rng.randrange(len(raw))]]
        elif kind == 2:  # bit flips in the msgpack body
            raw = bytearray(valid_frame[1])
            for _ in range(rng.randrange(1, 8)):
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            yield [wire.TOPIC_FRAME, bytes(raw)]
        elif kind == 3:  # a field of the wrong type or out of range
            fields = dict(body)
            fields[rng.choice(list(fields))] = rng.choice(wrong_values)
            yield packed(fields)
        elif kind == 4:  # oversized dimensions
            fields = dict(body, w=rng.choice([0, 4097, 10**6, 4096]), h=rng.choice([4096, 10**9]))
            yield packed(fields)
        elif kind == 5:  # valid header, corrupt payload with a matching CRC
            payload = bytearray(body["payload"])
            for _ in range(rng.randrange(1, 16)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            if rng.random() < 0.3:
                payload = payload[: len(payload) // 8 * 4] or bytearray(4)
            fields = dict(
                body,
                payload=bytes(payload),
                slices=[len(payload)],
                kind=rng.choice(["key", "inter"]),
                rows=rng.choice([0, 4, 8, 4096]),
            )
            yield packed(with_crcs(fields))
        elif kind == 6:  # valid header, wrong CRC, slice tables that do not fit the payload
            yield packed(
                rng.choice(
                    [
                        dict(body, crcs=[(c + 1) & 0xFFFFFFFF for c in body["crcs"]]),
                        dict(body, slices=body["slices"] + [0], crcs=body["crcs"] + [0]),
                        dict(body, slices=[4] * 65, crcs=[0] * 65),
                        dict(body, slices=[len(body["payload"]) + 4], crcs=body["crcs"]),
                    ]
                )
            )
        elif kind == 7:  # hostile references (a PNG claiming another size, garbage)
            ref = msgpack.unpackb(valid_reference[1])
            png = bytearray(ref["png"])
            png[16:24] = (60000).to_bytes(4, "big") * 2
            choice = rng.choice([bytes(png), rng.randbytes(100), b""])
            yield packed(dict(ref, png=choice), wire.TOPIC_REFERENCE)
        elif kind == 8:  # wrong version, topic, type, model, level
            fields = dict(body)
            key, value = rng.choice(
                [("v", 99), ("t", "end"), ("model", "f" * 16), ("level", 200), ("stream", "")]
            )
            fields[key] = value
            if key in ("model", "level"):
                fields = with_crcs(fields)  # to reach the receiver's own checks
            yield packed(fields, rng.choice([wire.TOPIC_FRAME, b"lc.other"]))
        else:  # msgpack bombs: huge declared lengths, deep nesting
            yield [
                wire.TOPIC_FRAME,
                rng.choice(
                    [
                        b"\xdd\xff\xff\xff\xff",
                        b"\x91" * 5000,
                        b"\xdf\x7f\xff\xff\xff",
                        b"\xc6\xff\xff\xff\xff",
                    ]
                ),
            ]


def with_crcs(fields: dict) -> dict:
    """A frame body's fields with the slice CRCs that match them (one slice)."""
    names = ("stream", "seq", "ts_us", "w", "h", "model", "level", "payload", "kind", "rows")
    message = wire.FrameMessage(*(fields[name] for name in names))
    return dict(fields, crcs=wire.frame_crcs(message))


def test_receiver_survives_100k_hostile_messages(tmp_path, tiny_model_path, subprocess_env):
    torch.set_num_threads(1)  # the receiver's --threads 1 and default precision, for the PSNR
    codec = ImageCodec.load(str(tiny_model_path), "cpu", "auto")
    port = free_port()
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.SNDHWM, 0)  # queue everything (before bind: bind copies options)
    publisher.bind(f"tcp://127.0.0.1:{port}")
    out = tmp_path / "rx"
    receiver = start(
        "receiver",
        [
            "--connect",
            f"tcp://127.0.0.1:{port}",
            "--model",
            str(tiny_model_path),
            "--keep-running",
            "--idle-timeout",
            "3",
            "--threads",
            "1",
            "--decode-all",
            "--quiet",
            "--out",
            str(out),
        ],
        subprocess_env,
    )
    try:
        wait_until_listening(receiver)
        image = natural_like_image(48, 64)
        coded = codec.compress(image, 1, "rgb")
        valid = wire.encode_frame(
            wire.FrameMessage("fuzz", 0, 0, 64, 48, codec.model_hash, 1, coded.payload)
        )
        import cv2

        png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
        reference = wire.encode_reference(wire.ReferenceMessage("fuzz", 0, 64, 48, png))
        generator = mutations(valid, reference)
        rss_start = None
        deliverable = 0  # the PUB socket itself filters topics the receiver did not subscribe
        for i in range(MESSAGES):
            message = next(generator)
            deliverable += message[0].startswith(wire.TOPICS)
            publisher.send_multipart(message)
            if i % 100 == 99:
                time.sleep(0.015)  # let the receiver keep up (PUB drops past the receiver's HWM)
            if i == 5000:
                rss_start = rss_kib(receiver.pid)
        assert receiver.poll() is None, "receiver died during the fuzzing"
        rss_after_fuzz = rss_kib(receiver.pid)
        time.sleep(1.0)
        for seq in range(1, 11):  # then a valid stream: it must decode to the right pictures
            frame = wire.FrameMessage("fuzz", seq, 0, 64, 48, codec.model_hash, 1, coded.payload)
            publisher.send_multipart(wire.encode_frame(frame))
            ref = wire.ReferenceMessage("fuzz", seq, 64, 48, png)
            publisher.send_multipart(wire.encode_reference(ref))
            time.sleep(0.05)
        receiver.communicate(timeout=60)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        publisher.close(linger=0)
        context.term()
    assert receiver.returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    rejected = summary["rejected"]
    # Nearly every hostile message arrived and was counted with a reason (a few frames of
    # the valid-with-matching-CRC kind decode without error and count as frames instead,
    # and predicted frames without a decoded reference count as unreferenced).
    handled = sum(rejected.values()) + summary["frames"] + summary["unreferenced_frames"]
    assert handled >= 0.99 * deliverable, rejected
    for reason in (
        "bad_framing",
        "bad_msgpack",
        "bad_field",
        "out_of_range",
        "checksum",
        "bad_reference",
        "protocol_version",
        "model_mismatch",
        "bad_topic",
    ):
        assert rejected.get(reason, 0) > 0, (reason, rejected)
    assert rss_after_fuzz - rss_start < 50 * 1024, (rss_start, rss_after_fuzz)
    records = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    expected = psnr(image, codec.decompress(coded))
    final = [r for r in records if r["psnr_db"] is not None][-10:]
    assert len(final) == 10
    assert all(abs(r["psnr_db"] - expected) < 1e-6 for r in final)
    assert np.isfinite(expected)
