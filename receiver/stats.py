"""Running statistics of a received stream: per-second windows and a final summary."""

from __future__ import annotations

import statistics
from collections import Counter, deque
from dataclasses import dataclass, field


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class FrameRecord:
    seq: int
    arrival_s: float  # receiver monotonic clock
    message_bytes: int
    payload_bytes: int
    pixels: int
    latency_ms: float
    decode_ms: float
    zero_share: float | None = None  # share of the frame's latent symbols that are 0
    psnr_db: float | None = None
    kind: str = "key"  # "key" or "inter"
    damaged_slices: int = 0  # slices lost or corrupt, concealed


#: Frame records kept for windows, percentiles and frames.jsonl: an hour at 30 fps, so a
#: receiver that runs for days holds bounded memory. Counts and rates cover the whole run.
MAX_RECORDS = 108_000

#: A sequence number further ahead than this (36 minutes at 30 fps) starts over: a sender
#: that restarted, not that many lost frames (which could otherwise grow without bound).
MAX_SEQ_GAP = 1 << 16


@dataclass
class StreamStats:
    """Accumulates ``FrameRecord``s and rejections; all rates use the frame messages' bytes."""

    records: deque[FrameRecord] = field(default_factory=lambda: deque(maxlen=MAX_RECORDS))
    rejected: Counter = field(default_factory=Counter)
    lost: int = 0
    skipped: int = 0
    concealed: int = 0  # damaged frames replaced by the previous picture on screen/recording
    unreferenced: int = 0  # predicted frames whose reference was missed: wait for a key frame
    frames: int = 0  # decoded frames over the whole run
    message_bytes: int = 0
    payload_bytes: int = 0
    pixels: int = 0
    _last_seq: int | None = None

    def _see(self, seq: int) -> None:
        if self._last_seq is not None and 1 < seq - self._last_seq <= MAX_SEQ_GAP:
            self.lost += seq - self._last_seq - 1
        self._last_seq = seq  # a step back or a larger jump: a restarted stream, no loss

    def add(self, record: FrameRecord) -> None:
        self._see(record.seq)
        self.records.append(record)
        self.frames += 1
        self.message_bytes += record.message_bytes
        self.payload_bytes += record.payload_bytes
        self.pixels += record.pixels

    def skip(self, seq: int) -> None:
        """A valid frame left undecoded because a newer one was already waiting."""
        self._see(seq)
        self.skipped += 1

    def unreferenced_frame(self, seq: int) -> None:
        """A valid predicted frame whose reference this receiver does not have (it joined
        late or missed a frame): left undecoded until a key frame."""
        self._see(seq)
        self.unreferenced += 1

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    @staticmethod
    def summarize(records: list[FrameRecord], seconds: float) -> dict:
        seconds = max(seconds, 1e-9)
        psnrs = [r.psnr_db for r in records if r.psnr_db is not None]
        shares = [r.zero_share for r in records if r.zero_share is not None]
        latencies = [r.latency_ms for r in records]
        total_bits = 8 * sum(r.message_bytes for r in records)
        payload_bits = 8 * sum(r.payload_bytes for r in records)
        pixels = sum(r.pixels for r in records)
        return {
            "frames": len(records),
            "seconds": round(seconds, 3),
            "fps": len(records) / seconds,
            "kbps": total_bits / seconds / 1000,
            "bpp": payload_bits / pixels if pixels else None,
            "psnr_db": statistics.fmean(psnrs) if psnrs else None,
            "psnr_frames": len(psnrs),
            "latency_ms_p50": _percentile(latencies, 50),
            "latency_ms_p95": _percentile(latencies, 95),
            "latency_ms_p99": _percentile(latencies, 99),
            "key_frames": sum(1 for r in records if r.kind == "key"),
            "damaged_slices": sum(r.damaged_slices for r in records),
            "decode_ms_median": statistics.median([r.decode_ms for r in records])
            if records
            else None,
            "zero_share": statistics.fmean(shares) if shares else None,
        }

    def window(self, start_s: float, end_s: float) -> dict:
        """Summary of the frames that arrived in ``[start_s, end_s)`` (records arrive in
        time order, so only the tail is scanned)."""
        chosen = []
        for record in reversed(self.records):
            if record.arrival_s < start_s:
                break
            if record.arrival_s < end_s:
                chosen.append(record)
        return self.summarize(chosen[::-1], end_s - start_s)

    def total(self, seconds: float) -> dict:
        """Whole-run counts and rates; PSNR and percentiles over the kept records."""
        summary = self.summarize(list(self.records), seconds)
        seconds = max(seconds, 1e-9)
        summary["frames"] = self.frames
        summary["fps"] = self.frames / seconds
        summary["kbps"] = 8 * self.message_bytes / seconds / 1000
        summary["bpp"] = 8 * self.payload_bytes / self.pixels if self.pixels else None
        summary["lost_frames"] = self.lost
        summary["skipped_frames"] = self.skipped
        summary["concealed_frames"] = self.concealed
        summary["unreferenced_frames"] = self.unreferenced
        summary["rejected"] = dict(self.rejected)
        return summary


def format_line(prefix: str, s: dict) -> str:
    def num(value, fmt: str, unit: str = "") -> str:
        return "-" if value is None else f"{value:{fmt}}{unit}"

    return (
        f"{prefix} frames {s['frames']:4d}  {s['fps']:5.1f} fps  {s['kbps']:8.1f} kbps  "
        f"bpp {num(s['bpp'], '.3f')}  PSNR {num(s['psnr_db'], '.2f', ' dB')}  "
        f"latency p50 {num(s['latency_ms_p50'], '.0f', ' ms')} "
        f"p95 {num(s['latency_ms_p95'], '.0f', ' ms')}  "
        f"zeros {num(None if s.get('zero_share') is None else 100 * s['zero_share'], '.0f', '%')}"
    )
