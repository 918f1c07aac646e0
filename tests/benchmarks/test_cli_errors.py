"""Every command-line mistake of ``python -m benchmarks`` is one line on stderr and exit
code 2, found before the benchmark measures anything, never a traceback."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import main
from tests.conftest import assert_one_line_error, run_cli, write_images, write_pan_clip


def run(args: list[str], capsys) -> tuple[int, str]:
    return run_cli(main, args, capsys)


def no_work(*args, **kwargs):
    raise AssertionError("the benchmark started measuring before checking its arguments")


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "images", 2, 48, 64, "im{i}.png")


@pytest.fixture
def clips(tmp_path):
    """``pan.avi`` (good) and ``z_bad.avi`` (not a video), in that order."""
    folder = write_pan_clip(tmp_path / "videos", 4)
    (folder / "z_bad.avi").write_bytes(b"RIFF not a video" * 100)
    return folder


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["rd", "--images", "IMAGES", "--threads", "-1"], "--threads"),
        (["rd", "--images", "IMAGES", "--limit", "0"], "--limit"),
        (["rd", "--images", "IMAGES", "--limit", "-1"], "--limit"),
        (["rd", "--images", "IMAGES", "--classic", "jpeg", "png"], "--classic"),
        (["speed", "--frames", "0"], "--frames"),
        (["video", "--videos", "IMAGES", "--frames", "0"], "--frames"),
        (["rate", "--videos", "IMAGES", "--seconds", "1"], "--seconds must be >= 7"),
        (["rate", "--videos", "IMAGES", "--seconds", "0"], "--seconds must be >= 7"),
        (["rate", "--videos", "IMAGES", "--seconds", "-5"], "--seconds must be >= 7"),
        (["rd", "--images", "IMAGES", "--reference-rd", "NOPE"], "--reference-rd"),
        (["speed", "--videos", "NOPE"], "no folder"),
        (["speed", "--quality", "99"], "quality level 99"),
        (["denoise", "--images", "IMAGES", "--sigmas", "0"], "--sigmas"),
        (["denoise", "--images", "IMAGES", "--sigmas", "0.1", "1.5"], "--sigmas"),
        (["roi", "--videos", "IMAGES", "--deadzone", "-1"], "--deadzone"),
        (["roi", "--videos", "IMAGES", "--skip-l1", "-1"], "--skip-l1"),
        (["face-search", "--videos", "IMAGES", "--step", "0"], "--step"),
        (["face-search", "--videos", "NOPE"], "no folder"),
        (["face-search", "--videos", "IMAGES", "--periods", "0"], "--periods"),
        (["inpaint-example", "--image", "IMAGES/im0.png", "--text", ""], "--text"),
    ],
)
def test_option_mistakes(tmp_path, images, capsys, monkeypatch, args, fragment):
    import benchmarks.rd
    import benchmarks.speed

    monkeypatch.setattr(benchmarks.rd, "evaluate", no_work)
    monkeypatch.setattr(benchmarks.speed, "load_frame_sets", no_work)
    args = [a.replace("IMAGES", str(images)).replace("NOPE", str(tmp_path / "nope")) for a in args]
    code, err = run([*args, "--out", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, fragment)
    assert not list((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize("command", ["rd", "stream"])
def test_out_that_is_a_file(tmp_path, images, capsys, command):
    args = [command, "--out", str(images / "im0.png")]
    args += ["--images", str(images)] if command == "rd" else []
    assert_one_line_error(*run(args, capsys), "--out", "is a file, not a folder")


def test_images_that_are_a_file_or_hold_an_unreadable_image(tmp_path, images, capsys):
    out = str(tmp_path / "out")
    code, err = run(["rd", "--images", str(images / "im0.png"), "--out", out], capsys)
    assert_one_line_error(code, err, "benchmarks: error:", "not a folder")
    (images / "im1b.png").write_bytes(b"\x89PNG broken" * 20)
    for command in ("rd", "denoise"):
        code, err = run([command, "--images", str(images), "--out", out], capsys)
        assert_one_line_error(code, err, "cannot read image", "im1b.png")


def test_unknown_model_is_reported_before_any_model_runs(tmp_path, images, capsys, monkeypatch):
    import benchmarks.rd

    monkeypatch.setattr(benchmarks.rd, "evaluate", no_work)
    args = ["rd", "--images", str(images), "--out", str(tmp_path / "out")]
    code, err = run([*args, "--models", "realtime", "nosuch"], capsys)
    assert_one_line_error(code, err, "nosuch")


@pytest.mark.parametrize("command", ["video", "conceal"])
def test_a_broken_clip_is_reported_before_the_first_is_coded(
    tmp_path, clips, capsys, monkeypatch, command
):
    import benchmarks.conceal
    import benchmarks.video

    monkeypatch.setattr(benchmarks.video, "code_ours", no_work)
    monkeypatch.setattr(benchmarks.conceal, "conceal_clip", no_work)
    args = [command, "--videos", str(clips), "--out", str(tmp_path / "out")]
    code, err = run([*args, "--clips", "*.avi", "--frames", "4"], capsys)
    assert_one_line_error(code, err, "cannot read frames", "z_bad.avi")


def test_inpaint_example_on_an_image_too_small_for_the_caption(tmp_path, capsys):
    tiny = write_images(tmp_path / "tiny", 1, 4, 4)
    args = ["inpaint-example", "--image", str(tiny / "img_0.png"), "--out", str(tmp_path / "o")]
    assert_one_line_error(*run(args, capsys), "covers no pixel")
    assert not (tmp_path / "o" / "inpaint_example.json").exists()
