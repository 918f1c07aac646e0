"""--record saves the received video, --show explains itself where no window can open, and
a run ends with a timeline plot."""

import subprocess
import sys

import cv2

from receiver.display import FrameSink, gui_problem, overlay
from tests.conftest import ROOT, natural_like_image
from tests.test_end_to_end import run_pair


def test_record_and_timeline(tmp_path, image_folder, tiny_model_path, subprocess_env):
    video = tmp_path / "received.mp4"
    out, _, _, _ = run_pair(
        tmp_path,
        subprocess_env,
        ["--source", str(image_folder), "--model", str(tiny_model_path), "--fps", "20"],
        ["--model", str(tiny_model_path), "--record", str(video)],
    )
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 6 and frames[0].shape[:2] == (144, 176)
    assert (out / "timeline.png").stat().st_size > 1000


def test_show_without_a_gui_is_one_clear_line(tiny_model_path, subprocess_env):
    problem = gui_problem()
    if problem is None:  # a machine with a display and GUI OpenCV: nothing to explain
        return
    result = subprocess.run(
        [sys.executable, "-m", "receiver", "--show", "--model", str(tiny_model_path)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--show:" in lines[0] and "--record" in lines[0]


def test_overlay_draws_on_a_copy():
    image = natural_like_image(120, 360)
    drawn = overlay(image, ["100 kbps  30.0 fps", "PSNR 30.00 dB"])
    assert drawn.shape == image.shape and (drawn != image).any()
    assert (image == natural_like_image(120, 360)).all()


def test_a_recording_opencv_cannot_write_is_dropped_with_a_warning(tmp_path, capsys):
    sink = FrameSink(show=False, record=str(tmp_path / "video.unknown-container"))
    for _ in range(3):
        sink.add(natural_like_image(32, 48), ["line"])  # the stream goes on
    sink.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not recording" in err[0]
