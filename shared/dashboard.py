"""A live terminal dashboard (``--dashboard``) for either end, drawn with ``rich``.

Each end calls ``update(current, average)`` once a second with two summaries (the last
second and the whole run, as dicts of the statistics it keeps); the dashboard shows them
side by side in one table that redraws in place. Keys it does not know are skipped, so the
sender and receiver share it.
"""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

#: (key, label, format) in display order.
ROWS = (
    ("frames", "frames", "{:.0f}"),
    ("fps", "fps", "{:.1f}"),
    ("kbps", "kbps", "{:.1f}"),
    ("bpp", "bits/pixel", "{:.3f}"),
    ("psnr_db", "PSNR (dB)", "{:.2f}"),
    ("latency_ms_p50", "latency p50 (ms)", "{:.0f}"),
    ("latency_ms_p95", "latency p95 (ms)", "{:.0f}"),
    ("encode_ms", "encode (ms)", "{:.1f}"),
    ("decode_ms_median", "decode (ms)", "{:.1f}"),
    ("zero_share", "zero latents", "{:.1%}"),
    ("level", "quality level", "{:.0f}"),
    ("lost_frames", "lost frames", "{:.0f}"),
    ("skipped_frames", "skipped frames", "{:.0f}"),
    ("concealed_frames", "concealed frames", "{:.0f}"),
    ("key_frames", "key frames", "{:.0f}"),
    ("receivers_heard", "receivers heard", "{:.0f}"),
    ("faces", "faces (--roi)", "{:.0f}"),
    ("face_searches", "face searches (--roi)", "{:.0f}"),
    ("noise_sigma", "noise, of the range (--denoise)", "{:.3f}"),
    ("rejected_total", "rejected messages", "{:.0f}"),
)


def render(title: str, current: dict, average: dict) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("last second", justify="right")
    table.add_column("whole run", justify="right")
    for key, label, fmt in ROWS:
        if key not in current and key not in average:
            continue
        cells = []
        for source in (current, average):
            value = source.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(label, *cells)
    return table


class Dashboard:
    """Context manager; ``update`` redraws. On a non-terminal it prints nothing."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.console = Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def __enter__(self) -> Dashboard:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def update(self, current: dict, average: dict) -> None:
        self.live.update(render(self.title, current, average), refresh=True)
