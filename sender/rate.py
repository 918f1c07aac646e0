"""Rate control: pick each frame's quality level so the stream averages a target bitrate.

Frames are key frames or predicted frames (which cost far less); the controller keeps one
size model per kind (see ``RateController``) and lets a key frame spend
``KEY_FRAME_BUDGET`` frames' budget, repaid by the predicted frames after it.

Every frame is coded independently with one of the model's discrete levels, so the
controller predicts each level's size from what recent frames cost and keeps a leaky bucket
of the bits spent above (or below) the budget. Each frame takes the highest level whose
predicted size fits the budget minus a share of the bucket's debt, so the average settles
on the target within about a second and mixes adjacent levels when the target lies between
them, without oscillating between distant ones. When even the lowest level does not fit
and the bucket is in debt, the frame is skipped (``choose`` returns ``None``): below the
lowest level's rate the frame rate drops instead of the bitrate overshooting.

With a clock (the sender's), the bucket runs on real time, so a sender that cannot keep
its frame rate (a busy CPU) still averages the target in bits per second.

Receivers' reports (one a second each, ``adapt_to_receivers``) move the target, as soon as
a new one arrives. A report says its receiver falls behind (``congestion``):

- overloaded: lost frames (ZeroMQ dropped them at the sender's high-water mark), latency
  ``QUEUE_TOLERANCE_MS`` above the lowest reported lately (the path's best), or far fewer
  bits received than were sent for the second it covers (frames sent a latency earlier):
  the target drops to ``DRAIN_SHARE`` of what that receiver received, a rate the path has
  just shown it carries (never more than to ``BACKOFF`` of the target);
- queueing: latency above ``LATENCY_LIMIT_MS``, or rising by ``RISE_MS`` since the last
  report, while ``GROW_TOLERANCE_MS`` above the path's best (a queue may be building, or
  the machine is merely busy): the target drops to ``SOFT_BACKOFF`` of itself (at most
  ``SOFT_DRAIN_SHARE`` of what the receiver received).

Either way the bucket is charged for the queue in front of the receiver (its latency above
the best plus the undelivered bits, up to ``MAX_PAUSE_S``), so the next frames are skipped
until it drains, and nothing is cut again for ``HOLD_S`` after that pause, since older
reports still show the queue. While all are fine (latency within ``GROW_TOLERANCE_MS`` of
the best, everything delivered), the target grows once a second: by ``FAST_GROWTH`` until
the first trouble; after it by ``PROBE_GROWTH`` up to just below both the rate where the
last trouble began and the path's capacity (what it carried when last overloaded), by
``RECOVERY`` near either, and by ``PROBE_GROWTH`` again once clearly past them (the path got
faster, or the trouble was a busy CPU). Reports not renewed for
``STALE_S`` (their receiver left) are ignored; a joining receiver's empty report is too.

Without a target (``RateController.adaptive``: the sender without ``--rate-kbps`` and
``--quality``) every frame gets the asked-for level as long as no receiver reports (none
with a feedback channel has joined). When the first one joins (its join report), the target
starts at ``START_KBPS`` and grows as above: the first seconds at full rate into a narrow
link would queue seconds of video in the sender's socket buffers before its first report
could say so. Once the target carries the asked-for level with ``HEADROOM`` to spare, the
controller lets go again (every frame at that level, no target) until a receiver falls
behind.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

#: Bits of a level relative to the level below it, before any measurement (the shipped
#: models double lambda per level, which costs about 30-45% more bits).
INITIAL_STEP_RATIO = 1.4
SMOOTHING = 0.2  # weight of the newest frame in each kind's size model
HORIZON_FRAMES = 15  # the bucket's debt is repaid over this many frames
#: A key frame may spend this many frames' budget (the predicted frames after it repay the
#: debt), so key frames keep a quality close to their neighbours' instead of dropping levels.
KEY_FRAME_BUDGET = 6.0
LATENCY_LIMIT_MS = 250.0  # a receiver above this (and above its path's best) is behind
BACKOFF = 0.8  # a cut for an overloaded path leaves at most this share of the target
SOFT_BACKOFF = 0.9  # a cut for a queue that may be building leaves this share
SOFT_DRAIN_SHARE = 0.95  # and at most this share of what that receiver received
DRAIN_SHARE = 0.85  # and at most this share of what the overloaded receiver received
MAX_PAUSE_S = 2.0  # longest pause charged for a queue (the bucket's debt limit)
HOLD_S = 1.5  # after a cut (and its pause), wait this long before cutting again
RECOVERY = 1.05  # target factor per good second near the rate of the last cut
STALE_S = 3.0  # reports older than this are ignored (their receiver left)
QUEUE_TOLERANCE_MS = 150.0  # latency this far above its recent minimum means a queue
GROW_TOLERANCE_MS = 30.0  # grow only while latency is within this of its recent minimum
RISE_MS = 20.0  # latency above that and this much higher than in the last report: a queue
REPORT_WINDOW_S = 1.0  # what a receiver's report covers
UNDELIVERED_SHARE = 0.2  # a report received this much less than was sent for it: behind
BASE_WINDOW_S = 30.0  # the recent minimum of the receivers' latency, over this long
START_KBPS = 500.0  # adaptive: the first target, before any receiver has reported
FAST_GROWTH = 1.5  # target factor per good second before any trouble
PROBE_GROWTH = 1.25  # and after it, below or clearly above where it began and the capacity
CEILING_MARGIN = 0.1  # "near" the last cut's rate: within this share of it
HEADROOM = 1.25  # adaptive: let go when the target exceeds the asked level's rate by this
MIN_KBPS = 16.0  # adaptive: the lowest target (with --rate-kbps: a tenth of it)
SENT_SMOOTHING = 0.05  # weight of the newest frame slot in the estimate of the sent rate
SENT_HISTORY = 1024  # frames remembered with their send time (for reports to compare)


OVERLOADED, QUEUEING = 2, 1  # ``RateController.congestion`` levels


@dataclass
class RateController:
    """Chooses levels for a stream of ``fps`` frames/s at ``target_kbps`` (wire bits);
    ``max_level`` caps the levels chosen (default: all of the model's levels).

    With a ``clock`` (seconds, e.g. ``time.perf_counter``) the budget follows the time that
    really passed between frames, so a sender slower than ``fps`` (a busy CPU) still averages
    the target; without one every frame slot counts ``1 / fps`` (simulations, tests).

    Size model: a frame of kind ``key`` at level ``L`` costs ``complexity[key] * ratio**L``
    bits. Every coded frame updates its kind's complexity (an exponential average of its bits
    scaled back to level 0), so a change of scene moves the prediction of every level at once
    and no level keeps a stale estimate (per-level estimates did: a level not chosen for a
    while kept an old size, and the stream sat 30% under target, then overshot); ``ratio``
    (cost per level step) is learned from consecutive frames of one kind at different
    levels."""

    target_kbps: float
    fps: float
    levels: int
    max_level: int | None = None
    clock: Callable[[], float] | None = None
    complexity: dict[bool, float | None] = field(init=False)  # bits at level 0, by is-key
    debt_bits: float = 0.0
    step_ratio: float = INITIAL_STEP_RATIO
    asked_kbps: float = field(init=False)
    skipped: int = 0  # frames skipped because even the lowest level would overrun the target
    cuts: int = 0  # times a receiver falling behind cut the target
    sent_bits_per_frame: float = 0.0  # smoothed over frame slots, skipped ones count as 0
    slot_s: float = field(init=False)  # smoothed seconds between frame slots
    _last_slot_s: float | None = field(init=False, default=None)
    _last_adapt_s: float = field(init=False, default=-1e9)
    _hold_until_s: float = field(init=False, default=-1e9)
    _first_seen_s: dict[int, tuple[object, float]] = field(init=False, default_factory=dict)
    _latencies: list[tuple[float, float]] = field(init=False, default_factory=list)
    _ceiling_kbps: float | None = field(init=False, default=None)  # where trouble last began
    _capacity_kbps: float | None = field(init=False, default=None)  # carried when overloaded
    _previous_ms: float = field(init=False, default=math.inf)  # the last new reports' latency
    _await_first_report: bool = field(init=False, default=False)
    _sent: deque = field(init=False, default_factory=lambda: deque(maxlen=SENT_HISTORY))
    _last: dict[bool, tuple[int, float] | None] = field(init=False)

    def __post_init__(self) -> None:
        if not self.target_kbps > 0 or not self.fps > 0:
            raise ValueError("--rate-kbps and the frame rate must be positive")
        if self.max_level is None:
            self.max_level = self.levels - 1
        if not 0 <= self.max_level < self.levels:
            raise ValueError(f"level {self.max_level} is not one of the {self.levels} levels")
        self.complexity = {True: None, False: None}
        self._last = {True: None, False: None}
        self.asked_kbps = self.target_kbps
        self.slot_s = 1.0 / self.fps

    @classmethod
    def adaptive(
        cls, fps: float, levels: int, level: int, clock: Callable[[], float] | None = None
    ) -> RateController:
        """No target: ``level`` for every frame until a receiver falls behind (see the module
        docstring)."""
        controller = cls(math.inf, fps, levels, max_level=level, clock=clock)
        controller._await_first_report = True
        return controller

    @property
    def limited(self) -> bool:
        """Whether a finite target is in force (always, unless adaptive and let go)."""
        return math.isfinite(self.target_kbps)

    @property
    def sent_kbps(self) -> float:
        """Smoothed rate of what was sent recently."""
        return self.sent_bits_per_frame / self.slot_s / 1000

    def sent_bits_between(self, start_s: float, end_s: float) -> tuple[float, float]:
        """Wire bits sent in ``[start_s, end_s)`` (the clock's time) and the largest frame."""
        chosen = [bits for t, bits in self._sent if start_s <= t < end_s]
        return sum(chosen), max(chosen, default=0.0)

    def undelivered_bits(self, report, now_s: float) -> float:
        """Bits sent for the second that ``report`` covers (frames sent its latency before)
        that its receiver did not get, less one frame's worth of timing slack; 0 without
        a clock or a latency."""
        if self.clock is None or report.latency_ms < 0:
            return 0.0
        delay_s = report.latency_ms / 1000
        sent, largest = self.sent_bits_between(now_s - REPORT_WINDOW_S - delay_s, now_s - delay_s)
        return max(0.0, sent - report.kbps * 1000 * REPORT_WINDOW_S - largest)

    def congestion(self, report, now_s: float, base_ms: float) -> int:
        """How badly ``report``'s receiver falls behind: ``OVERLOADED`` (lost frames, far
        fewer bits received than were sent for its second, or latency a queue's worth above
        the path's recent best ``base_ms``), ``QUEUEING`` (latency above the limit, or rising
        and above the best: a queue may be building, or the machine is just busy) or 0."""
        latency = report.latency_ms
        if report.lost > 0 or latency > base_ms + QUEUE_TOLERANCE_MS:
            return OVERLOADED
        received_bits = report.kbps * 1000 * REPORT_WINDOW_S
        if self.undelivered_bits(report, now_s) > UNDELIVERED_SHARE * received_bits:
            return OVERLOADED
        # Above the limit counts only above the path's best: where a frame alone takes longer
        # than the limit to cross the link, no rate gets below it.
        if latency > base_ms + GROW_TOLERANCE_MS and (
            latency > LATENCY_LIMIT_MS or latency > self._previous_ms + RISE_MS
        ):
            return QUEUEING
        return 0

    def adapt_to_receivers(self, reports: list, now_s: float) -> None:
        """Act on new reports (``reports`` holds each receiver's latest; one is new when
        this object was not passed before): cut the target as soon as one says its receiver
        falls behind (see ``congestion``), let it grow at most once a second while all are
        fine (see the module docstring)."""
        # Keyed by id() and holding the report, so a newer report cannot reuse the id of one
        # still remembered here.
        known = self._first_seen_s
        seen = {
            id(r): known[id(r)] if id(r) in known and known[id(r)][0] is r else (r, now_s)
            for r in reports
        }
        self._first_seen_s = seen
        first_seen = {key: first_s for key, (_, first_s) in seen.items()}
        if self._await_first_report and any(first_seen[id(r)] == now_s for r in reports):
            # The first receiver with a feedback channel joined: start low and grow.
            self._await_first_report = False
            self.target_kbps, self.debt_bits = START_KBPS, 0.0
        # A report without frames (a receiver joining) says nothing about the path.
        fresh = [
            r
            for r in reports
            if now_s - first_seen[id(r)] <= STALE_S and (r.latency_ms >= 0 or r.lost > 0)
        ]
        new = [r for r in fresh if first_seen[id(r)] == now_s]
        if not new:
            return
        measured = [r.latency_ms for r in new if r.latency_ms >= 0]
        self._latencies = [(t, ms) for t, ms in self._latencies if now_s - t <= BASE_WINDOW_S]
        self._latencies += [(now_s, ms) for ms in measured]
        base_ms = min((ms for _, ms in self._latencies), default=0.0)
        levels = {id(r): self.congestion(r, now_s, base_ms) for r in new}
        self._previous_ms = max(measured, default=math.inf)
        behind = [r for r in new if levels[id(r)]]
        if behind:
            if now_s >= self._hold_until_s:  # else the last cut has not shown in reports yet
                overloaded = [r for r in behind if levels[id(r)] == OVERLOADED]
                self._cut(overloaded or behind, bool(overloaded), base_ms, now_s)
        elif now_s - self._last_adapt_s >= 1.0 and not any(
            r.lost > 0 or r.latency_ms > LATENCY_LIMIT_MS for r in fresh
        ):
            # Grow only while the path delivers what was sent, with no queue building.
            if max(measured, default=base_ms) <= base_ms + GROW_TOLERANCE_MS and not any(
                self.undelivered_bits(r, now_s) > 0 for r in new
            ):
                self._last_adapt_s = now_s
                self._grow()

    def _cut(self, behind: list, overloaded: bool, base_ms: float, now_s: float) -> None:
        """Overloaded: down to what the path just carried; queueing: by ``SOFT_BACKOFF``.
        Then skip frames while the queue in front of the slowest receiver drains."""
        floor = 0.1 * self.asked_kbps if math.isfinite(self.asked_kbps) else MIN_KBPS
        current = self.target_kbps if self.limited else self.sent_kbps
        if current <= 0:
            return  # nothing sent yet: no rate to cut from
        self.cuts += 1
        target = (BACKOFF if overloaded else SOFT_BACKOFF) * current
        received = [r.kbps for r in behind if r.kbps > 0]
        if received and not overloaded:  # a saturated path shows in what it carried
            target = min(target, SOFT_DRAIN_SHARE * min(received))
        # Trouble began at this rate; what the path carried while it could not carry
        # everything (frames lost or undelivered) is its capacity.
        self._ceiling_kbps = current
        if overloaded:
            if received:
                target = min(target, DRAIN_SHARE * min(received))
                if any(r.lost > 0 or self.undelivered_bits(r, now_s) > 0 for r in behind):
                    self._ceiling_kbps = self._capacity_kbps = min(received)
        if not self.limited:
            self.debt_bits = 0.0
        self.target_kbps = max(floor, target)
        # The queue: latency above the path's best, plus what was sent but not received.
        pause_s = max(
            max(0.0, r.latency_ms - base_ms) / 1000
            + self.undelivered_bits(r, now_s) / max(r.kbps * 1000, self.target_kbps * 1000)
            for r in behind
        )
        pause_s = min(MAX_PAUSE_S, pause_s)
        self.debt_bits = max(self.debt_bits, 0.0) + pause_s * self.target_kbps * 1000
        self._hold_until_s = now_s + pause_s + HOLD_S
        self._last_adapt_s = now_s

    def _grow(self) -> None:
        """Fast up to just below the rate where trouble last began and the path's capacity
        (what it carried when last overloaded), slowly (``RECOVERY``) near either, fast
        again once well past them without trouble (the path got faster, or the trouble was
        a passing hiccup); see the module docstring."""
        if not self.limited:
            return
        # Before any trouble, FAST_GROWTH; past where it began, PROBE_GROWTH.
        fast = FAST_GROWTH if self._ceiling_kbps is None else PROBE_GROWTH
        target = self.target_kbps * fast
        for level in (self._ceiling_kbps, self._capacity_kbps):
            if level is None or self.target_kbps >= (1 + CEILING_MARGIN) * level:
                continue
            if self.target_kbps < (1 - CEILING_MARGIN) * level:
                target = min(target, (1 - CEILING_MARGIN) * level)
            else:
                target = min(target, self.target_kbps * RECOVERY)
        self.target_kbps = min(self.asked_kbps, target)
        asked = self.predicted_bits(self.max_level)
        if not math.isfinite(self.asked_kbps) and asked is not None:
            if self.budget_bits >= HEADROOM * asked:
                self.target_kbps, self.debt_bits = math.inf, 0.0

    @property
    def budget_bits(self) -> float:
        """Bits per frame that the target allows."""
        return self.target_kbps * 1000 * self.slot_s

    def predicted_bits(self, level: int, key: bool = False) -> float | None:
        """Estimated wire bits of a key (or predicted) frame at ``level``; before any frame
        of that kind was coded, a predicted frame is guessed at a tenth of a key frame and a
        key frame at ten predicted frames."""
        base = self.complexity[key]
        if base is None:
            other = self.complexity[not key]
            if other is None:
                return None
            base = other * (10.0 if key else 0.1)
        return base * self.step_ratio**level

    def choose(self, key: bool = False) -> int | None:
        """The level for the next frame (``key``: it will be a key frame), or ``None``: skip
        it (then call ``skip``). Key frames are never skipped."""
        if not self.limited:
            return self.max_level
        if self.predicted_bits(0, key) is None:  # adaptive: start with the fewest bits
            return 0 if math.isinf(self.asked_kbps) else min(self.levels // 2, self.max_level)
        share = KEY_FRAME_BUDGET if key else 1.0
        allowance = share * self.budget_bits - self.debt_bits / HORIZON_FRAMES
        chosen = None
        for level in range(self.max_level + 1):
            if self.predicted_bits(level, key) <= allowance:
                chosen = level
        if chosen is None and (key or self.debt_bits <= 0):
            chosen = 0  # too big for its share: send it, and skip until it is paid
        return chosen

    def _account(self, bits: float) -> None:
        elapsed = 1.0 / self.fps
        if self.clock is not None:
            now = self.clock()
            if self._last_slot_s is not None:
                elapsed = min(max(now - self._last_slot_s, 0.0), 1.0)
                self.slot_s += SENT_SMOOTHING * (max(elapsed, 1e-3) - self.slot_s)
            self._last_slot_s = now
            if bits:
                self._sent.append((now, bits))
        self.sent_bits_per_frame += SENT_SMOOTHING * (bits - self.sent_bits_per_frame)
        if not self.limited:
            self.debt_bits = 0.0
            return
        # The debt is bounded so one huge scene change cannot starve the next seconds.
        limit = MAX_PAUSE_S * self.target_kbps * 1000
        credit = self.target_kbps * 1000 * elapsed
        self.debt_bits = min(max(self.debt_bits + bits - credit, -limit), limit)

    def skip(self) -> None:
        """Account a frame slot that ``choose`` told to skip."""
        self.skipped += 1
        self._account(0.0)

    def update(self, level: int, bits: float, key: bool = False) -> None:
        """Account a coded frame of ``bits`` wire bits at ``level``."""
        last = self._last[key]
        if last is not None and last[0] != level and last[1] > 0 and bits > 0:
            sample = (bits / last[1]) ** (1.0 / (level - last[0]))
            self.step_ratio = 0.9 * self.step_ratio + 0.1 * min(max(sample, 1.1), 2.5)
        self._last[key] = (level, bits)
        normalized = bits / self.step_ratio**level
        previous = self.complexity[key]
        self.complexity[key] = (
            normalized if previous is None else (1 - SMOOTHING) * previous + SMOOTHING * normalized
        )
        self._account(bits)
