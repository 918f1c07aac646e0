"""Command-line mistakes: one readable line naming the option, exit code 2, before any work."""

import argparse

import pytest

from receiver.__main__ import build_parser as receiver_parser
from receiver.__main__ import main as receiver_main
from sender.__main__ import build_parser as sender_parser
from sender.__main__ import main as sender_main
from sender.relay import main as relay_main
from shared.cli import (
    check_output_file,
    device_name,
    feedback_option,
    positive_float,
    positive_int,
    prepare_output_folder,
    zmq_address,
)


@pytest.mark.parametrize(
    "text", ["tcp://*:5555", "tcp://127.0.0.1:1", "tcp://[::1]:65535", "tcp://*:*", "ipc:///tmp/x"]
)
def test_addresses_that_libzmq_takes_as_meant(text):
    assert zmq_address(text) == text


@pytest.mark.parametrize(
    "text", ["tcp://127.0.0.1:99999", "tcp://h:0", "tcp://h:", "tcp://:5555", "tcp://h", "x"]
)
def test_addresses_libzmq_would_misread_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        zmq_address(text)


def test_number_and_device_types():
    assert positive_int("3") == 3 and positive_float("0.5") == 0.5
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
    for bad in ("0", "-5", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(bad)
    assert [device_name(d) for d in ("auto", "cpu", "cuda", "cuda:1")]
    for bad in ("gpu", "mps", "cuda:x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            device_name(bad)
    assert feedback_option("off") == "off" and feedback_option("auto") == "auto"


@pytest.mark.parametrize(
    "parser, args, option",
    [
        (sender_parser, ["--bind", "tcp://127.0.0.1:99999"], "--bind"),
        (sender_parser, ["--feedback", "tcp://h:70000"], "--feedback"),
        (sender_parser, ["--stream-id", ""], "--stream-id"),
        (sender_parser, ["--stream-id", "x" * 65], "--stream-id"),
        (sender_parser, ["--fps", "0"], "--fps"),
        (sender_parser, ["--fps", "-5"], "--fps"),
        (sender_parser, ["--frames", "-1"], "--frames"),
        (sender_parser, ["--duration", "-5"], "--duration"),
        (sender_parser, ["--warmup", "-1"], "--warmup"),
        (sender_parser, ["--roi-interval", "0"], "--roi-interval"),
        (sender_parser, ["--roi-boost", "-2"], "--roi-boost"),
        (sender_parser, ["--device", "gpu"], "--device"),
        (sender_parser, ["--size", "2560x1440"], "--size"),
        (receiver_parser, ["--connect", "tcp://127.0.0.1:99999"], "--connect"),
        (receiver_parser, ["--device", "mps"], "--device"),
        (receiver_parser, ["--frames", "0"], "--frames"),
        (receiver_parser, ["--idle-timeout", "nan"], "--idle-timeout"),
        (receiver_parser, ["--duration", "-5"], "--duration"),
    ],
)
def test_option_mistakes_are_one_line_naming_the_option(parser, args, option, capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"argument {option}:" in err


def test_relay_addresses_are_checked(capsys):
    with pytest.raises(SystemExit):
        relay_main(["--upstream", "tcp://a:123456"])
    assert "--upstream" in capsys.readouterr().err


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert prepare_output_folder(tmp_path / "new" / "deeper", "--out").is_dir()
    with pytest.raises(ValueError, match="--out .* is a file"):
        prepare_output_folder(a_file, "--out")
    with pytest.raises(ValueError, match="--record: folder .* does not exist"):
        check_output_file(tmp_path / "missing" / "x.mp4", "--record")
    with pytest.raises(ValueError, match="is a folder"):
        check_output_file(tmp_path, "--stats-json")
    check_output_file(tmp_path / "x.json", "--stats-json")
    # The ends refuse them at start-up (before loading a model or opening a socket).
    assert receiver_main(["--out", str(a_file)]) == 2
    assert receiver_main(["--record", str(tmp_path / "missing" / "x.mp4")]) == 2
    assert sender_main(["--stats-json", str(tmp_path / "missing" / "s.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert all(line.startswith(("receiver: error", "sender: error")) for line in err)


def test_an_idle_timeout_before_any_frame_exits_1(tiny_model_path, capsys):
    from tests.test_end_to_end import free_port

    args = ["--connect", f"tcp://127.0.0.1:{free_port()}", "--model", str(tiny_model_path)]
    assert receiver_main([*args, "--idle-timeout", "0.5", "--feedback", "off", "--quiet"]) == 1
    assert "nothing received for" in capsys.readouterr().err


def test_a_named_inpainting_model_that_does_not_load_exits_2(tiny_model_path, tmp_path, capsys):
    from tests.test_end_to_end import free_port

    args = ["--connect", f"tcp://127.0.0.1:{free_port()}", "--model", str(tiny_model_path)]
    missing = str(tmp_path / "inpaint.safetensors")
    assert receiver_main([*args, "--inpaint-model", missing, "--feedback", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("receiver: error: --inpaint-model: ")
    assert missing in err[0]
