"""The offline rate benchmark runs the sender's controller and encoder on a real clip."""

import json

import cv2
import numpy as np

from benchmarks.rate import ping_pong, run_rate
from tests.conftest import natural_like_image


def test_rate_benchmark_holds_a_target_on_a_clip(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    scene = natural_like_image(96, 200, seed=2)
    writer = cv2.VideoWriter(
        str(folder / "pan.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 10, (128, 96)
    )
    for i in range(60):
        writer.write(cv2.cvtColor(np.ascontiguousarray(scene[:, i : i + 128]), cv2.COLOR_RGB2BGR))
    writer.release()
    result = run_rate(str(folder), str(tmp_path / "out"), "realtime", [40.0], 12.0, 2.0, ("*.avi",))
    row = result["clips"]["pan.avi"]["40.0"]
    assert row["windows"] == 11 and abs(row["worst_deviation_pct"]) <= 10, row
    assert (
        json.loads((tmp_path / "out" / "rate.json").read_text())["clips"]["pan.avi"]["40.0"] == row
    )
    assert [len(ping_pong([1, 2, 3], n)) for n in (2, 7)] == [2, 7]
    assert ping_pong([1, 2, 3], 7) == [1, 2, 3, 2, 1, 2, 3]
