"""Rate control holds a target bitrate within 10% over every 5-second window once settled."""

import json
import random

import pytest

from sender.rate import RateController
from tests.test_end_to_end import run_pair


def simulate(
    target_kbps: float, seconds: float = 30, fps: float = 30, seed: int = 0, key_every: int = 1
):
    """Frames of a synthetic stream; with ``key_every > 1`` a key frame costing 8 predicted
    frames every ``key_every`` frames."""
    rng = random.Random(seed)
    controller = RateController(target_kbps, fps, levels=8)
    frames = []
    for i in range(int(seconds * fps)):
        scene = 1.0 if i < seconds * fps / 2 else 1.8  # a harder scene half-way through
        key = key_every > 1 and i % key_every == 0
        level = controller.choose(key)
        bits = 4000 * scene * 1.45**level * rng.uniform(0.85, 1.15)
        if key_every > 1:
            bits = bits * 8 / 3 if key else bits / 3
        controller.update(level, bits, key)
        frames.append((i / fps, level, bits))
    return frames


def windows(frames, settle_s: float, span_s: float = 5.0):
    end = frames[-1][0]
    start = settle_s
    while start + span_s <= end:
        bits = sum(b for t, _, b in frames if start <= t < start + span_s)
        yield bits / span_s / 1000
        start += 0.5


@pytest.mark.parametrize("target", [200, 450, 900])
def test_average_within_ten_percent_over_every_window(target):
    frames = simulate(target)
    for kbps in windows(frames, settle_s=2.0):
        assert abs(kbps - target) <= 0.1 * target, kbps
    # Settled, it mixes neighbouring levels only: no jumps across the range.
    jumps = [abs(a[1] - b[1]) for a, b in zip(frames[60:], frames[61:], strict=False)]
    assert max(jumps) <= 2 and sum(j > 1 for j in jumps) <= 3


@pytest.mark.parametrize("target", [100, 300])
def test_key_and_predicted_frames_hold_the_target_too(target):
    frames = simulate(target, key_every=60)
    for kbps in windows(frames, settle_s=2.0):
        assert abs(kbps - target) <= 0.1 * target, kbps
    key_levels = [level for i, (_, level, _) in enumerate(frames) if i % 60 == 0][1:]
    neighbours = [frames[i + 1][1] for i in range(60, len(frames) - 1, 60)]
    # Key frames get a quality close to the predicted frames around them.
    assert all(abs(k - n) <= 2 for k, n in zip(key_levels, neighbours, strict=False))


def test_rejects_nonsense():
    with pytest.raises(ValueError):
        RateController(0, 30, 6)


def test_real_stream_holds_the_target(tmp_path, subprocess_env):
    target = 300.0
    out, sender_out, _, _ = run_pair(
        tmp_path,
        subprocess_env,
        [
            "--source",
            "sample",
            "--size",
            "176x144",
            "--fps",
            "30",
            "--loop",
            "--duration",
            "11",
            "--model",
            "fast",
            "--rate-kbps",
            str(target),
            "--no-reference",
        ],
        ["--model", "fast", "--no-psnr"],
    )
    records = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    t0 = records[0]["arrival_s"]
    frames = [(r["arrival_s"] - t0, 0, 8 * r["message_bytes"]) for r in records]
    measured = list(windows(frames, settle_s=2.0))
    assert measured, "stream too short"
    for kbps in measured:
        assert abs(kbps - target) <= 0.1 * target, measured


def test_backs_off_while_a_receiver_falls_behind_and_recovers():
    from shared.wire import ReportMessage

    controller = RateController(1000, 30, levels=8)
    slow = [ReportMessage("rx", 30, 900.0, 0, 800.0, 5.0, keyframe=False)]
    fine = [ReportMessage("rx", 30, 900.0, 0, 40.0, 5.0, keyframe=False)]
    for second in range(5):
        controller.adapt_to_receivers(slow, float(second))
    assert controller.target_kbps == pytest.approx(1000 * 0.8**5)
    controller.adapt_to_receivers(slow, 4.5)  # at most once a second
    assert controller.target_kbps == pytest.approx(1000 * 0.8**5)
    for second in range(5, 60):
        controller.adapt_to_receivers(fine, float(second))
    assert controller.target_kbps == 1000


def test_a_target_below_the_lowest_level_drops_frames_instead_of_overshooting():
    controller = RateController(40, 30, levels=8)  # level 0 costs ~100 kbps below
    sent_bits, dropped = [], 0
    for i in range(900):
        if i > 0 and controller.should_skip():
            controller.skip()
            dropped += 1
            sent_bits.append(0.0)
            continue
        level = controller.choose(key=i == 0)
        bits = 3300 * 1.45**level * (8 if i == 0 else 1)
        controller.update(level, bits, key=i == 0)
        sent_bits.append(bits)
    late = sent_bits[300:]  # after 10 s
    assert 0.9 * 40 <= sum(late) / (len(late) / 30) / 1000 <= 1.1 * 40
    assert 400 < dropped < 800


def test_budget_follows_the_frame_rate_really_achieved():
    controller = RateController(300, 30, levels=8)
    controller.set_frame_rate(15)
    assert controller.budget_bits == 20_000
    controller.set_frame_rate(100)  # never above the nominal rate
    assert controller.budget_bits == 10_000
