"""The stream benchmark: real sender and receiver processes, on loopback and over a shaped
link between two network namespaces (root, ``ip`` and ``tc`` needed; skipped otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from benchmarks import stream
from benchmarks.__main__ import main
from tests.conftest import ROOT


def run_benchmark(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "stream", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def netns_names() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def can_shape() -> str | None:
    """Why a shaped link cannot be made here, or ``None``."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    probe = f"lcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create network namespaces here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


SHAPE_PROBLEM = can_shape()
needs_link = pytest.mark.skipif(SHAPE_PROBLEM is not None, reason=SHAPE_PROBLEM or "")


def test_loopback_run_writes_a_plausible_report_and_plot(tmp_path, subprocess_env):
    out = tmp_path / "out"
    args = ["--out", str(out), "--size", "160x120", "--duration", "4", "--fps", "15"]
    result = run_benchmark(args, subprocess_env)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "stream.json").read_text())
    assert (out / "stream.png").stat().st_size > 10_000
    settings, summary = report["settings"], report["summary"]
    assert settings["size"] == "160x120" and settings["link"] is None
    assert settings["model"] == "realtime" and settings["rate"].startswith("adaptive")
    # About 4 s at 15 fps; the sender may skip frames while it ramps up from START_KBPS.
    assert 15 <= summary["frames"] <= summary["frames_sent"] <= 70
    assert 1 <= summary["fps"] <= 16
    assert 10 < summary["kbps"] < 5_000
    assert 20 < summary["psnr_db"] < 60 and summary["psnr_frames"] >= 10
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 5_000
    assert summary["lost_frames"] == 0
    series = report["series"]
    assert len(series) >= 3 and sum(s["frames"] for s in series) == summary["frames"]
    assert all({"kbps", "fps", "psnr_db", "latency_ms_p95", "key_frames"} <= set(s) for s in series)
    # The table on stdout carries the same figures.
    assert "latency p95 (ms)" in result.stdout and f"{summary['kbps']:.0f}" in result.stdout


def test_frame_kinds_are_counted_when_the_receiver_records_them(tmp_path):
    """frames.jsonl gains a ``kind`` field with inter-frame coding; key frames are counted,
    listed and marked on the plot (records without the field count as no key frame)."""
    out = tmp_path / "out"
    (out / "receiver").mkdir(parents=True)
    records = []
    for i in range(90):
        record = {
            "seq": i if i < 50 else i + 2,  # two frames missing at 50
            "arrival_s": 100.0 + i / 30,
            "message_bytes": 2000,
            "payload_bytes": 1900,
            "pixels": 19200,
            "latency_ms": 40.0 + i,
            "decode_ms": 5.0,
            "psnr_db": 30.0,
        }
        if i > 0:
            record["kind"] = "key" if i % 30 == 0 else "delta"
        records.append(record)
    (out / "receiver" / "frames.jsonl").write_text("\n".join(map(json.dumps, records)))
    (out / "sender.json").write_text(json.dumps({"frames": 92, "rate_skipped_frames": 3}))
    settings = stream.StreamSettings(out=str(out), size=(160, 120))
    report = stream.analyse(settings, out, None)
    summary = report["summary"]
    assert summary["key_frames"] == 2 and summary["key_frames_recorded"]
    assert report["key_frame_times_s"] == [1.0, 2.0]
    assert [s["key_frames"] for s in report["series"]] == [0, 1, 1]
    assert sum(s["missing_frames"] for s in report["series"]) == 2
    assert summary["fps"] == pytest.approx(90 / (89 / 30))
    assert summary["kbps"] == pytest.approx(90 * 16 / (89 / 30))
    assert summary["latency_ms"]["p50"] == pytest.approx(40 + 44.5)
    assert summary["frames_captured"] == 95 and summary["not_arrived_at_end"] == 0
    stream.plot(report, out / "stream.png")
    assert (out / "stream.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loss", "0.01"], "--loss needs --link-kbps"),
        (["--link-kbps", "0"], "--link-kbps must be positive"),
        (["--link-kbps", "500", "--loss", "1.5"], "--loss is a fraction"),
        (["--source", "/no/such/clip.mkv"], "no such file"),
        (["--size", "big"], "size must look like"),
        (["--rate-kbps", "-3"], "--rate-kbps must be positive"),
    ],
)
def test_argument_errors_give_one_line_and_exit_2(tmp_path, subprocess_env, args, message):
    result = run_benchmark(["--out", str(tmp_path / "out"), *args], subprocess_env, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_root_or_tools_is_one_clear_line(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "out")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["stream", "--out", out, "--link-kbps", "1000"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "needs root" in error
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda t: None if t == "iptables" else real_which(t))
    assert main(["stream", "--out", out, "--link-kbps", "1000", "--loss", "0.01"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "needs iptables" in error and "apt-get install -y iptables" in error


def test_tbf_burst_is_two_packets_or_ten_ms():
    assert stream.tbf_burst_bytes(1000) == 3000
    assert stream.tbf_burst_bytes(100_000) == 125_000


@needs_link
def test_shaped_link_caps_the_stream_and_is_removed_afterwards(tmp_path, subprocess_env):
    out = tmp_path / "out"
    args = ["--out", str(out), "--size", "160x120", "--duration", "8", "--link-kbps", "150"]
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "stream", *args],
        env=subprocess_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert f"lc{process.pid}" not in netns_names()
    assert not os.path.exists(f"/sys/class/net/lc{process.pid}s")
    report = json.loads((out / "stream.json").read_text())
    link = report["settings"]["link"]
    assert link["kbps"] == 150 and link["tbf_burst_bytes"] == 3000
    assert "tbf" in link["qdisc"]["sender"] and "rate 150Kbit" in link["qdisc"]["sender"]
    summary = report["summary"]
    assert summary["frames"] >= 20
    # The link really is 150 kbit/s: no second carried more (one frame of slack for the
    # binning by arrival time), and the sender settled below it.
    assert max(s["kbps"] for s in report["series"]) <= 150 + 8 * 2.5
    assert report["summary_after_settling"]["kbps"] <= 150
    # PSNR came from the monitoring receiver beside the sender, joined by sequence number.
    assert report["settings"]["psnr_source"].startswith("monitor")
    assert summary["psnr_frames"] >= 0.5 * summary["frames"] and 20 < summary["psnr_db"] < 60


@needs_link
def test_ctrl_c_stops_everything_and_removes_the_namespaces(tmp_path, subprocess_env):
    args = ["--out", str(tmp_path / "out"), "--size", "160x120", "--duration", "60"]
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "stream", *args, "--link-kbps", "500"],
        env=subprocess_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    name = f"lc{process.pid}s"
    try:
        deadline = time.monotonic() + 60
        while name not in netns_names() or not (tmp_path / "out" / "sender.log").exists():
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.2)
        time.sleep(2.0)
        process.send_signal(signal.SIGINT)  # to the benchmark only, not its children
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert f"lc{process.pid}" not in netns_names()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""  # no sender or receiver left running


@needs_link
@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables for --loss")
def test_loss_on_the_link_runs_and_is_recorded(tmp_path, subprocess_env):
    out = tmp_path / "out"
    args = ["--out", str(out), "--size", "160x120", "--duration", "5", "--no-psnr"]
    result = run_benchmark([*args, "--link-kbps", "1000", "--loss", "0.05"], subprocess_env)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "stream.json").read_text())
    link = report["settings"]["link"]
    assert link["loss"] == 0.05 and link["qdisc"]["loss_dropped_packets"] > 0
    assert report["summary"]["frames"] >= 10 and report["summary"]["psnr_frames"] == 0
