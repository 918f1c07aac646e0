"""Pacing a file source: a sender briefly late catches up, one far behind restarts the
schedule, and a late frame's latency counts from its slot."""

from __future__ import annotations

import pytest

from sender import app
from sender.app import CATCH_UP_FRAMES, pace


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(app.time, "perf_counter", fake.perf_counter)
    monkeypatch.setattr(app.time, "sleep", fake.sleep)
    return fake


def frames(clock, due, work_s, count, fps=30.0):
    """Handle ``count`` frames taking ``work_s`` each; returns the next frame's slot and
    each handled frame's lateness (s)."""
    late = []
    for _ in range(count):
        late.append(max(0.0, clock.now - due))
        clock.now += work_s
        due = pace(due, fps)
    return due, late


def test_on_time_frames_sleep_out_the_rest_of_their_slot(clock):
    due, late = frames(clock, clock.now, 0.010, 30)
    assert clock.now == pytest.approx(100.0 + 30 / 30.0)
    assert max(late) == pytest.approx(0.0)


def test_a_brief_stall_is_caught_up_and_the_video_keeps_real_time(clock):
    start = clock.now
    due, late = frames(clock, start, 0.010, 10)
    clock.now += 0.080  # one frame took 80 ms more: 2.4 slots behind
    due, late = frames(clock, due, 0.010, 20)
    # 30 frames still take one second: nothing was lost, the lag was worked off.
    assert clock.now == pytest.approx(start + 30 / 30.0)
    assert late[0] == pytest.approx(0.080)  # counted into that frame's latency
    assert late[-1] == pytest.approx(0.0)


def test_a_long_stall_gives_the_time_up_instead_of_a_burst(clock):
    start = clock.now
    due, _ = frames(clock, start, 0.010, 10)
    clock.now += 1.0  # far more than CATCH_UP_FRAMES slots
    stalled_at = clock.now
    due, late = frames(clock, due, 0.010, 1)
    assert due == pytest.approx(stalled_at + 0.010)  # the schedule restarts
    assert CATCH_UP_FRAMES / 30.0 < 1.0
