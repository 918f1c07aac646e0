"""The offline rate benchmark runs the sender's controller and encoder on a real clip."""

import json

from benchmarks.rate import ping_pong, run_rate
from tests.conftest import write_pan_clip


def test_rate_benchmark_holds_a_target_on_a_clip(tmp_path):
    folder = write_pan_clip(tmp_path / "videos", 60, fps=10, scene_width=200, seed=2)
    result = run_rate(str(folder), str(tmp_path / "out"), "realtime", [40.0], 12.0, 2.0, ("*.avi",))
    row = result["clips"]["pan.avi"]["40.0"]
    assert row["windows"] == 11 and abs(row["worst_deviation_pct"]) <= 10, row
    assert (
        json.loads((tmp_path / "out" / "rate.json").read_text())["clips"]["pan.avi"]["40.0"] == row
    )
    assert [len(ping_pong([1, 2, 3], n)) for n in (2, 7)] == [2, 7]
    assert ping_pong([1, 2, 3], 7) == [1, 2, 3, 2, 1, 2, 3]
