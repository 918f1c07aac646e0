"""Rate control: pick each frame's quality level so the stream averages a target bitrate.

Each frame is coded with one of the model's discrete levels, as a key frame or as a
predicted frame (which costs far less), so the controller predicts each level's size per
frame kind from what recent frames of that kind cost and keeps a leaky bucket of the bits
spent above (or below) the budget. Each frame takes the highest level whose
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
    """Chooses levels for a stream of ``fps`` frames/s at ``target_kbps`` (wire bits)."""

    target_kbps: float
    fps: float
    levels: int
    estimates: dict[bool, list[float | None]] = field(init=False)  # by is-key-frame
    debt_bits: float = 0.0
    step_ratio: float = INITIAL_STEP_RATIO
    asked_kbps: float = field(init=False)
    _last_adapt_s: float = field(init=False, default=-1e9)

    def __post_init__(self) -> None:
        if self.target_kbps <= 0 or self.fps <= 0:
            raise ValueError("--rate-kbps and the frame rate must be positive")
        self.estimates = {True: [None] * self.levels, False: [None] * self.levels}
        self.asked_kbps = self.target_kbps

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

    @property
    def budget_bits(self) -> float:
        """Bits per frame that the target allows."""
        return self.target_kbps * 1000 / self.fps

    def predicted_bits(self, level: int, key: bool = False) -> float | None:
        """Estimated wire bits of a key (or predicted) frame at ``level``, from the nearest
        measured level of that kind (of the other kind when none is measured yet)."""
        for estimates in (self.estimates[key], self.estimates[not key]):
            measured = [(k, bits) for k, bits in enumerate(estimates) if bits is not None]
            if measured:
                nearest, bits = min(measured, key=lambda item: abs(item[0] - level))
                return bits * self.step_ratio ** (level - nearest)
        return None

    def choose(self, key: bool = False) -> int:
        """The level for the next frame (``key``: it will be a key frame)."""
        share = KEY_FRAME_BUDGET if key else 1.0
        allowance = share * self.budget_bits - self.debt_bits / HORIZON_FRAMES
        if self.predicted_bits(0, key) is None:
            return self.levels // 2
        chosen = 0
        for level in range(self.levels):
            if self.predicted_bits(level, key) <= allowance:
                chosen = level
        return chosen

    def update(self, level: int, bits: float, key: bool = False) -> None:
        """Account a coded frame of ``bits`` wire bits at ``level``."""
        estimates = self.estimates[key]
        previous = estimates[level]
        estimates[level] = (
            bits if previous is None else ((1 - SMOOTHING) * previous + SMOOTHING * bits)
        )
        below, above = estimates[max(level - 1, 0)], estimates[level]
        if level > 0 and below and above and above > below:
            self.step_ratio = 0.9 * self.step_ratio + 0.1 * (above / below)
        # The debt is bounded so one huge scene change cannot starve the next seconds.
        limit = 2 * self.fps * self.budget_bits
        self.debt_bits = min(max(self.debt_bits + bits - self.budget_bits, -limit), limit)
