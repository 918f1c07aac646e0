"""The receiver's message handling, in process: decoding, PSNR matching, rejections."""

import cv2
import numpy as np
import pytest

from receiver.app import Receiver, report_of
from receiver.stats import FrameRecord, StreamStats
from shared import wire
from shared.codec import ImageCodec
from shared.metrics import psnr
from shared.registry import ZOO
from shared.video import VideoEncoder
from tests.conftest import natural_like_image


@pytest.fixture
def setup(tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path))
    logs = []
    return codec, Receiver(codec, StreamStats(), log=logs.append), logs


def frame_parts(codec, image, seq, **changes):
    coded = codec.compress(image, 0)
    fields = dict(
        stream="s",
        seq=seq,
        ts_us=0,
        width=coded.width,
        height=coded.height,
        model=codec.model_hash,
        level=0,
        payload=coded.payload,
    )
    fields.update(changes)
    return wire.encode_frame(wire.FrameMessage(**fields))


def reference_parts(image, seq):
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    message = wire.ReferenceMessage("s", seq, image.shape[1], image.shape[0], png.tobytes())
    return wire.encode_reference(message)


def test_psnr_is_matched_in_either_order(setup):
    codec, receiver, _ = setup
    images = [natural_like_image(48, 64, seed=i) for i in range(2)]
    receiver.handle(frame_parts(codec, images[0], 0), 100, 0.0)
    receiver.handle(reference_parts(images[0], 0), 100, 0.0)
    receiver.handle(reference_parts(images[1], 1), 100, 0.1)  # reference first
    receiver.handle(frame_parts(codec, images[1], 1), 100, 0.1)
    records = receiver.stats.records
    for record, image in zip(records, images, strict=True):
        expected = psnr(image, codec.decompress(codec.compress(image, 0)))
        assert record.psnr_db == pytest.approx(expected)


def test_gaps_count_as_lost_and_skips_do_not(setup):
    codec, receiver, _ = setup
    image = natural_like_image(32, 32)
    receiver.handle(frame_parts(codec, image, 0), 10, 0.0)
    receiver.handle(frame_parts(codec, image, 1), 10, 0.0, decode=False)
    receiver.handle(frame_parts(codec, image, 4), 10, 0.0)
    assert receiver.stats.skipped == 1
    assert receiver.stats.lost == 2
    assert [r.seq for r in receiver.stats.records] == [0, 4]


def test_rejections_are_counted_by_reason(setup):
    codec, receiver, logs = setup
    image = natural_like_image(32, 32)
    receiver.handle(frame_parts(codec, image, 0, model="f" * 16), 10, 0.0)
    receiver.handle(frame_parts(codec, image, 1, model="f" * 16), 10, 0.0)
    receiver.handle(frame_parts(codec, image, 2, level=9), 10, 0.0)
    receiver.handle(frame_parts(codec, image, 3, width=4096, height=4096), 10, 0.0)
    good = frame_parts(codec, image, 4)
    receiver.handle([good[0], good[1][:-3]], 10, 0.0)
    receiver.handle(reference_parts(image, 5)[:1] + [b"\x00"], 10, 0.0)
    assert 4096 * 4096 > wire.MAX_FRAME_PIXELS
    assert dict(receiver.stats.rejected) == {
        "model_mismatch": 2,
        "bad_level": 1,
        "frame_too_large": 1,
        "bad_msgpack": 2,
    }
    assert sum("coded with model" in line for line in logs) == 1
    assert not receiver.stats.records


def test_a_reference_of_another_size_is_rejected_in_either_order(setup):
    codec, receiver, _ = setup
    small, large = natural_like_image(48, 64), natural_like_image(96, 128)
    receiver.handle(frame_parts(codec, small, 0), 100, 0.0)
    receiver.handle(reference_parts(large, 0), 100, 0.0)  # after its frame
    receiver.handle(reference_parts(large, 1), 100, 0.0)  # before it
    receiver.handle(frame_parts(codec, small, 1), 100, 0.0)
    receiver.handle(frame_parts(codec, small, 2), 100, 0.0)
    receiver.handle(reference_parts(small, 2), 100, 0.0)
    assert dict(receiver.stats.rejected) == {"bad_reference": 2}
    assert [r.psnr_db is not None for r in receiver.stats.records] == [False, False, True]


def test_sequence_jumps_are_restarts_not_losses(setup):
    codec, receiver, _ = setup
    image = natural_like_image(32, 32)
    for seq in (0, 2**63 - 1, 0, 2**63 - 1, 5, 7):
        receiver.handle(frame_parts(codec, image, seq), 10, 0.0)
    assert len(receiver.stats.records) == 6
    assert receiver.stats.lost == 1  # only 6; the jumps and steps back are restarts
    window = receiver.stats.window(-1.0, 1.0)
    report = report_of(window, 2**70)  # however large, the report stays encodable
    assert report.lost == wire.MAX_REPORT_LOST
    assert wire.decode_report(wire.encode_report(report)) == report


def test_a_rejected_frame_of_another_model_keeps_the_stream(setup):
    codec, receiver, _ = setup
    encoder = VideoEncoder(codec)
    scene = natural_like_image(48, 96, seed=3)
    messages = []
    for seq in range(3):
        coded = encoder.encode(np.ascontiguousarray(scene[:, 2 * seq : 2 * seq + 64]), 0)
        fields = (coded.width, coded.height, codec.model_hash, 0, coded.payload, coded.kind)
        messages.append(wire.encode_frame(wire.FrameMessage("s", seq, 0, *fields)))
    assert [wire.decode(m).kind for m in messages] == ["key", "inter", "inter"]
    other = ZOO["dense"][1][:16]
    receiver.handle(messages[0], 10, 0.0)
    receiver.handle(frame_parts(codec, scene[:, :64], 1, model=other, level=255), 10, 0.0)
    receiver.handle(frame_parts(codec, scene[:, :64], 1, model=other, kind="inter"), 10, 0.0)
    receiver.handle(messages[1], 10, 0.0)
    receiver.handle(messages[2], 10, 0.0)
    assert receiver.codec is codec and receiver.stats.rejected == {"bad_level": 1}
    assert [r.seq for r in receiver.stats.records] == [0, 1, 2]
    assert receiver.stats.unreferenced == 1  # the other model's predicted frame


def test_payload_that_fails_entropy_decoding_is_rejected(setup):
    codec, receiver, _ = setup
    image = natural_like_image(32, 32)
    coded = codec.compress(image, 0)
    # Valid CRC over a payload for a different (larger) frame size.
    parts = wire.encode_frame(
        wire.FrameMessage("s", 0, 0, 320, 320, codec.model_hash, 0, coded.payload)
    )
    receiver.handle(parts, 10, 0.0)
    assert dict(receiver.stats.rejected) == {"corrupt_payload": 1}


def test_end_message_ends(setup):
    _, receiver, _ = setup
    receiver.handle(wire.encode_end(wire.EndMessage("s", 3, 4)), 10, 0.0)
    assert receiver.ended


def test_stats_memory_is_bounded_but_counts_cover_the_whole_run(monkeypatch):
    from receiver import stats as stats_module

    monkeypatch.setattr(stats_module, "MAX_RECORDS", 10)
    stats = stats_module.StreamStats()
    for seq in range(25):
        stats.add(FrameRecord(seq, seq * 0.1, 100, 80, 64, 5.0, 1.0))
    assert len(stats.records) == 10 and stats.records[0].seq == 15
    summary = stats.total(2.5)
    assert summary["frames"] == 25 and summary["fps"] == 10
    assert summary["kbps"] == 8 * 100 * 25 / 2.5 / 1000
    assert summary["bpp"] == 8 * 80 / 64


def test_damaged_frames_are_concealed_with_the_previous_picture(tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    receiver = Receiver(codec, StreamStats(), log=lambda text: None)
    shown = []

    class Sink:
        def add(self, rgb, lines):
            shown.append(rgb)

    receiver.sink = Sink()
    image = natural_like_image(48, 64)
    payload = codec.compress(image, 1, "rgb").payload
    good = wire.encode_frame(wire.FrameMessage("s", 0, 0, 64, 48, codec.model_hash, 1, payload))
    receiver.handle(good, 100, 0.0)
    damaged = bytearray(good[1])
    damaged[good[1].find(payload) + 5] ^= 0xFF  # inside the payload: the CRC no longer matches
    receiver.handle([good[0], bytes(damaged)], 100, 0.1)
    assert receiver.stats.rejected["checksum"] == 1
    assert len(shown) == 2 and (shown[1] == shown[0]).all()
    assert receiver.stats.total(1.0)["concealed_frames"] == 1


def test_a_signal_while_the_outputs_are_written_does_not_lose_them(
    tmp_path, tiny_model_path, monkeypatch
):
    """The stream benchmark stops a receiver with SIGINT; one that already left its loop
    and is writing its summary and plots must finish them, not die of KeyboardInterrupt."""
    import os
    import signal

    import receiver.app as app
    from tests.test_end_to_end import free_port

    write = app.write_outputs

    def interrupted_write(*args):
        os.kill(os.getpid(), signal.SIGINT)
        write(*args)

    monkeypatch.setattr(app, "write_outputs", interrupted_write)
    config = app.ReceiverConfig(
        connect=f"tcp://127.0.0.1:{free_port()}",
        model=str(tiny_model_path),
        threads=1,
        idle_timeout=0.3,
        feedback="off",
        conceal="copy",
        out=str(tmp_path / "rx"),
        quiet=True,
    )
    summary = app.run_receiver(config)
    assert summary["frames"] == 0
    assert (tmp_path / "rx" / "summary.json").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_link_clogged_by_the_psnr_originals_is_named():
    from receiver.app import narrow_link_hint

    behind = {"latency_ms_p50": 11_356.0, "kbps": 20.0}
    hint = narrow_link_hint(behind, reference_kbps=1500.0)
    assert hint and "11.4 s behind" in hint and "--no-psnr" in hint
    assert narrow_link_hint(behind, reference_kbps=60.0) is None  # the video's own fault
    assert narrow_link_hint({"latency_ms_p50": 30.0, "kbps": 700.0}, 45_000.0) is None
    assert narrow_link_hint({"latency_ms_p50": None, "kbps": 0.0}, 1500.0) is None
