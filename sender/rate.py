"""Rate control: pick each frame's quality level so the stream averages a target bitrate.

Each frame is coded with one of the model's discrete levels, as a key frame or as a
predicted frame (which costs far less), so the controller predicts each level's size per
frame kind from what recent frames of that kind cost (see ``RateController``) and keeps a
leaky bucket of the bits spent above (or below) the budget. Each frame takes the highest level whose
predicted size fits the budget minus a share of the bucket's debt, so the average settles
on the target within about a second and mixes adjacent levels when the target lies between
them, without oscillating between distant ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Bits of a level relative to the level below it, before any measurement (the shipped
#: models double lambda per level, which costs about 30-45% more bits).
INITIAL_STEP_RATIO = 1.4
SMOOTHING = 0.2  # weight of the newest frame in each level's size estimate
HORIZON_FRAMES = 15  # the bucket's debt is repaid over this many frames
#: A key frame may spend this many frames' budget (the predicted frames after it repay the
#: debt), so key frames keep a quality close to their neighbours' instead of dropping levels.
KEY_FRAME_BUDGET = 6.0
LATENCY_LIMIT_MS = 250.0  # a receiver above this is falling behind: lower the rate
BACKOFF = 0.8  # target factor per second while any receiver falls behind
RECOVERY = 1.05  # and per second back towards the asked-for target once all are fine


@dataclass
class RateController:
    """Chooses levels for a stream of ``fps`` frames/s at ``target_kbps`` (wire bits).

    Size model: a frame of kind ``key`` at level ``L`` costs ``complexity[key] * ratio**L``
    bits. Every coded frame updates its kind's complexity (an exponential average of its bits
    scaled back to level 0), so a change of scene moves the prediction of every level at once
    and no level keeps a stale estimate; ``ratio`` (cost per level step) is learned from
    consecutive frames of one kind at different levels.
    """

    target_kbps: float
    fps: float
    levels: int
    complexity: dict[bool, float | None] = field(init=False)  # bits at level 0, by is-key
    debt_bits: float = 0.0
    step_ratio: float = INITIAL_STEP_RATIO
    asked_kbps: float = field(init=False)
    nominal_fps: float = field(init=False)
    _last: dict[bool, tuple[int, float] | None] = field(init=False)
    _last_adapt_s: float = field(init=False, default=-1e9)

    def __post_init__(self) -> None:
        if self.target_kbps <= 0 or self.fps <= 0:
            raise ValueError("--rate-kbps and the frame rate must be positive")
        self.complexity = {True: None, False: None}
        self._last = {True: None, False: None}
        self.asked_kbps = self.target_kbps
        self.nominal_fps = self.fps

    def adapt_to_receivers(self, reports: list, now_s: float) -> None:
        """Once a second: back off while any receiver reports latency above
        ``LATENCY_LIMIT_MS`` or lost frames (its link cannot carry the rate), recover
        towards the asked-for target otherwise."""
        if now_s - self._last_adapt_s < 1.0 or not reports:
            return
        self._last_adapt_s = now_s
        behind = any(r.latency_ms > LATENCY_LIMIT_MS or r.lost > 0 for r in reports)
        factor = BACKOFF if behind else RECOVERY
        floor = 0.1 * self.asked_kbps
        self.target_kbps = min(self.asked_kbps, max(floor, self.target_kbps * factor))

    def set_frame_rate(self, measured_fps: float) -> None:
        """Use the frame rate measured over the last second (at most the nominal one, at
        least 1 frame/s) for the per-frame budget."""
        self.fps = min(max(measured_fps, 1.0), self.nominal_fps)

    @property
    def budget_bits(self) -> float:
        """Bits per frame that the target allows."""
        return self.target_kbps * 1000 / self.fps

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

    def _allowance(self, key: bool) -> float:
        share = KEY_FRAME_BUDGET if key else 1.0
        return share * self.budget_bits - self.debt_bits / HORIZON_FRAMES

    def choose(self, key: bool = False) -> int:
        """The level for the next frame (``key``: it will be a key frame)."""
        allowance = self._allowance(key)
        if self.predicted_bits(0, key) is None:
            return self.levels // 2
        chosen = 0
        for level in range(self.levels):
            if self.predicted_bits(level, key) <= allowance:
                chosen = level
        return chosen

    def should_skip(self) -> bool:
        """True when even the lowest level of a predicted frame does not fit: the sender then
        drops the frame (a lower frame rate) rather than exceed the target."""
        predicted = self.predicted_bits(0, False)
        return predicted is not None and self.debt_bits > 0 and predicted > self._allowance(False)

    def skip(self) -> None:
        """Account a dropped frame: its budget repays the debt."""
        self.debt_bits = max(self.debt_bits - self.budget_bits, -self._debt_limit())

    def _debt_limit(self) -> float:
        # Bounded so one huge scene change cannot starve the next seconds.
        return 2 * self.fps * self.budget_bits

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
        limit = self._debt_limit()
        self.debt_bits = min(max(self.debt_bits + bits - self.budget_bits, -limit), limit)
