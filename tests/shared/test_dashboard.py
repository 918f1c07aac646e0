"""The terminal dashboard shows both ends' statistics, current and whole-run."""

from rich.console import Console

from shared.dashboard import render
from tests.test_end_to_end import run_pair


def text_of(table) -> str:
    console = Console(record=True, width=100)
    console.print(table)
    return console.export_text()


def test_render_shows_known_keys_and_skips_unknown():
    text = text_of(
        render("rx", {"fps": 29.94, "kbps": 512.0, "zero_share": 0.81}, {"fps": 30.0, "x": 1})
    )
    assert "29.9" in text and "512.0" in text and "81.0%" in text and "30.0" in text
    assert "PSNR" not in text
    text = text_of(render("tx", {"faces": 1, "face_searches": 12}, {"faces": 1}))
    assert "faces (--roi)" in text and "face searches (--roi)" in text and "12" in text


def test_both_ends_run_with_the_dashboard(tmp_path, image_folder, tiny_model_path, subprocess_env):
    _, sender_out, receiver_out, _ = run_pair(
        tmp_path,
        subprocess_env,
        [
            "--source",
            str(image_folder),
            "--model",
            str(tiny_model_path),
            "--fps",
            "4",
            "--dashboard",
        ],
        ["--model", str(tiny_model_path), "--dashboard"],
    )
    assert "fps" in sender_out and "whole run" in sender_out
    assert "PSNR (dB)" in receiver_out and "whole run" in receiver_out
    for name in ("kbps", "latency p50", "key frames", "zero latents"):
        assert name in receiver_out, name
    for name in ("kbps", "key frames", "quality level"):
        assert name in sender_out, name
    assert "lost frames" in receiver_out and "skipped frames" in receiver_out
