"""A real stream, optionally over a shaped link: ``python -m benchmarks stream --out OUT``.

The sender and the receiver run as separate processes (``python -m sender`` and ``python -m
receiver``, exactly as a user starts them). Afterwards the receiver's per-frame records
(``frames.jsonl``) are turned into a per-second series and a summary (decoded fps, kbps of
the coded stream, PSNR, end-to-end latency p50/p95/p99, lost and skipped frames, key
frames when the receiver records frame kinds), written to ``OUT/stream.json`` and plotted
in ``OUT/stream.png``.

Without ``--link-kbps`` both ends talk over loopback. With ``--link-kbps M``:

- two network namespaces (``lc<pid>s`` for the sender, ``lc<pid>r`` for the receiver; the
  PID keeps parallel runs apart) are joined by a veth pair, 10.77.0.1/24 (sender) and
  10.77.0.2/24 (receiver), and each end's egress is shaped with a token bucket filter,
  ``tc qdisc add dev X root tbf rate Mkbit burst B latency Q``, so both directions (the
  video one way, the receivers' reports and TCP acknowledgements the other) see an M kbit/s
  link;
- ``burst`` B is ``max(2 * MTU, 10 ms of the rate)`` bytes: two full packets at least (a
  smaller bucket cannot pass a full-size packet and would throttle below the rate), and
  about 10 ms of data at high rates, where a 3 kB bucket would need an unrealistically fine
  timer; at 1000 kbit/s that is 3000 bytes;
- ``latency`` Q (``--queue-ms``, default 300 ms) bounds the queue in front of the link:
  packets that would wait longer are dropped. 300 ms is the buffering of a typical DSL or
  cable uplink (neither a bufferbloated 2 s modem queue nor an idealised 20 ms one), and
  since TCP fills whatever queue there is, a sender that overruns the link sees up to Q ms
  of extra delay before any loss;
- ``--loss P`` drops each packet arriving at the receiver's interface with probability P
  (``iptables -m statistic --mode random --probability P -j DROP`` in its namespace).
  ZeroMQ runs over TCP, so a dropped packet is retransmitted, never missing: loss shows as
  latency (a retransmission waits at least TCP's minimum timeout, 200 ms, when the loss is
  not caught by duplicate acknowledgements) and as lower throughput, not as lost frames;
- all of it is removed at the end, on errors, on Ctrl-C and on SIGTERM (deleting a
  namespace removes its end of the veth pair, and the pair goes with it). After a SIGKILL,
  ``ip netns list`` shows the leftovers; ``ip netns del NAME`` removes them.

PSNR needs the sender's lossless originals (PNG, ~300 kB per 640x480 frame), which cannot
cross a narrow link without swamping it. On a shaped link the receiver therefore runs with
``--no-psnr`` (only the coded stream crosses the link) and a second, monitoring receiver in
the sender's namespace (on the sender's loopback, ``--feedback off`` so the sender does not
adapt to it) gets the originals and measures PSNR; the far receiver's frames get the PSNR
that the monitor measured for the same sequence number (every frame decodes to the same
picture on both). The monitor runs niced (it yields the CPU to the pair being measured,
and decodes only the newest frame when it falls behind); ``--no-psnr`` leaves it out.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENDER_ADDRESS, RECEIVER_ADDRESS, PREFIX_LENGTH = "10.77.0.1", "10.77.0.2", 24
MTU = 1500
BURST_SECONDS = 0.010
DEFAULT_QUEUE_MS = 300.0
LINK_PORT = 5597  # inside the namespaces nothing else listens
START_TIMEOUT_S = 60.0  # model loading on a busy 2-core machine
DRAIN_S = 10.0  # how long receivers may go on after the sender ends (frames still in flight)
SETTLE_S = 5.0  # the summary also reports the run without its first seconds
MONITOR_NICENESS = 10  # the PSNR monitor yields the CPU to the sender and the receiver
#: Values of a frame record's ``kind`` field that mean a key (intra) frame.
KEY_KINDS = {"key", "keyframe", "intra", "i", "idr"}


class StreamSetupError(RuntimeError):
    """Something the run needs is missing (root, ``ip``, ``tc``, ``iptables``): one line."""


class StreamRunError(RuntimeError):
    """A sender or receiver process failed; the message carries its own error line."""


@dataclass
class StreamSettings:
    out: str
    source: str = "sample"
    model: str = "realtime"
    size: tuple[int, int] | None = (640, 480)
    fps: float = 30.0
    duration: float = 30.0
    rate_kbps: float | None = None
    link_kbps: float | None = None
    loss: float = 0.0
    queue_ms: float = DEFAULT_QUEUE_MS
    threads: int = 1
    psnr: bool = True
    extra_sender_args: list[str] = field(default_factory=list)


def tbf_burst_bytes(link_kbps: float) -> int:
    """The token bucket's depth: two full packets, or 10 ms of the rate when that is more."""
    return max(2 * MTU, round(link_kbps * 1000 / 8 * BURST_SECONDS))


def check_requirements(settings: StreamSettings) -> None:
    """Raise ``StreamSetupError`` saying what is missing for a shaped run."""
    if settings.link_kbps is None:
        return
    if os.geteuid() != 0:
        raise StreamSetupError(
            "--link-kbps needs root (it creates network namespaces and tc qdiscs); "
            "run it as root, or leave out --link-kbps for a loopback run"
        )
    needed = ["ip", "tc"] + (["iptables"] if settings.loss > 0 else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        packages = {"ip": "iproute2", "tc": "iproute2", "iptables": "iptables"}
        install = " ".join(sorted({packages[tool] for tool in missing}))
        raise StreamSetupError(
            f"--link-kbps{' --loss' if settings.loss > 0 else ''} needs "
            f"{', '.join(missing)}, not found on PATH (Debian/Ubuntu: apt-get install -y "
            f"{install})"
        )


def _run_command(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise StreamSetupError(
            f"`{' '.join(argv)}` failed: {reason[-1] if reason else f'exit {result.returncode}'}"
        )


class ShapedLink:
    """Two network namespaces joined by a veth pair, each direction shaped by ``tc tbf``
    (and the receiver's ingress thinned by iptables when ``loss`` > 0). A context manager:
    everything is removed on exit, whatever happened."""

    def __init__(self, kbps: float, loss: float, queue_ms: float, tag: int | None = None):
        tag = os.getpid() if tag is None else tag
        self.kbps, self.loss, self.queue_ms = kbps, loss, queue_ms
        self.burst_bytes = tbf_burst_bytes(kbps)
        self.sender_ns, self.receiver_ns = f"lc{tag}s", f"lc{tag}r"
        self.sender_dev, self.receiver_dev = f"lc{tag}s", f"lc{tag}r"  # veth names <= 15 chars
        self.created: list[str] = []

    def exec_prefix(self, side: str) -> list[str]:
        return ["ip", "netns", "exec", self.sender_ns if side == "sender" else self.receiver_ns]

    def describe(self) -> dict:
        return {
            "kbps": self.kbps,
            "loss": self.loss,
            "tbf_burst_bytes": self.burst_bytes,
            "tbf_latency_ms": self.queue_ms,
            "shaped": "both directions (tbf on each veth end's egress)",
            "namespaces": [self.sender_ns, self.receiver_ns],
            "addresses": [SENDER_ADDRESS, RECEIVER_ADDRESS],
        }

    def __enter__(self) -> ShapedLink:
        try:
            for ns in (self.sender_ns, self.receiver_ns):
                _run_command(["ip", "netns", "add", ns])
                self.created.append(ns)
            _run_command(
                f"ip link add {self.sender_dev} type veth peer name {self.receiver_dev}".split()
            )
            ends = (
                (self.sender_ns, self.sender_dev, SENDER_ADDRESS),
                (self.receiver_ns, self.receiver_dev, RECEIVER_ADDRESS),
            )
            for ns, dev, address in ends:
                _run_command(["ip", "link", "set", dev, "netns", ns])
                cidr = f"{address}/{PREFIX_LENGTH}"
                _run_command(["ip", "-n", ns, "addr", "add", cidr, "dev", dev])
                _run_command(["ip", "-n", ns, "link", "set", dev, "up"])
                _run_command(["ip", "-n", ns, "link", "set", "lo", "up"])
                _run_command(
                    f"ip netns exec {ns} tc qdisc add dev {dev} root tbf rate {self.kbps:g}kbit "
                    f"burst {self.burst_bytes} latency {self.queue_ms:g}ms".split()
                )
            if self.loss > 0:
                _run_command(
                    f"ip netns exec {self.receiver_ns} iptables -A INPUT -i {self.receiver_dev} "
                    f"-m statistic --mode random --probability {self.loss:g} -j DROP".split()
                )
        except BaseException:
            self.close()
            raise
        return self

    def qdisc_stats(self) -> dict:
        """``tc -s qdisc`` of both ends (sent bytes, drops, overlimits), as text, and the
        packets that the loss rule dropped."""
        stats = {}
        for side, ns, dev in (
            ("sender", self.sender_ns, self.sender_dev),
            ("receiver", self.receiver_ns, self.receiver_dev),
        ):
            result = subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", dev],
                capture_output=True,
                text=True,
            )
            stats[side] = " ".join(result.stdout.split())
            dropped = re.search(r"dropped (\d+)", stats[side])
            stats[f"{side}_tbf_dropped_packets"] = int(dropped.group(1)) if dropped else None
        if self.loss > 0:
            result = subprocess.run(
                f"ip netns exec {self.receiver_ns} iptables -L INPUT -v -n -x".split(),
                capture_output=True,
                text=True,
            )
            rows = [line.split() for line in result.stdout.splitlines() if "DROP" in line]
            stats["loss_dropped_packets"] = int(rows[0][0]) if rows else None
        return stats

    def close(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created.clear()
        # A veth end still in this namespace (setup failed half-way) goes with its peer.
        if Path(f"/sys/class/net/{self.sender_dev}").exists():
            subprocess.run(["ip", "link", "del", self.sender_dev], capture_output=True)

    def __exit__(self, *exc) -> None:
        self.close()


class Process:
    """A child process whose stdout and stderr go to ``OUT/<name>.log`` / ``<name>.err``."""

    def __init__(self, name: str, argv: list[str], out: Path, env: dict) -> None:
        self.name = name
        self.log_path, self.err_path = out / f"{name}.log", out / f"{name}.err"
        with self.log_path.open("w") as log, self.err_path.open("w") as err:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=err, env=env, cwd=ROOT)

    def error_line(self) -> str:
        lines = [x for x in self.err_path.read_text(errors="replace").splitlines() if x.strip()]
        errors = [x for x in lines if "error" in x.lower()]
        return (errors or lines or [f"exit code {self.popen.returncode}"])[-1].strip()

    def wait_for_line(self, prefix: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(x.startswith(prefix) for x in self.log_path.read_text().splitlines()):
                return
            if self.popen.poll() is not None:
                raise StreamRunError(f"{self.name} exited at start: {self.error_line()}")
            time.sleep(0.1)
        raise StreamRunError(f"{self.name} did not start within {timeout:.0f} s")

    def stop(self, grace: float = 10.0) -> None:
        """SIGINT (the CLIs finish and write their outputs), then SIGKILL after ``grace``."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C, so the cleanup below always runs."""

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_port_pair(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback port p with p + 1 (the feedback channel) also free, neither in ``taken``."""
    for _ in range(200):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535 or {port, port + 1} & taken:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise StreamSetupError("no free pair of loopback ports")


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = str(1)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def stream_processes(settings: StreamSettings, out: Path, link: ShapedLink | None) -> dict:
    """Start the receiver(s), then the sender; wait for the sender to finish and the
    receivers to drain. Returns how each process ended."""
    env = _child_env()
    python = [sys.executable, "-m"]
    size = f"{settings.size[0]}x{settings.size[1]}" if settings.size else None
    common = ["--model", settings.model, "--threads", str(settings.threads), "--quiet"]
    idle = str(max(30.0, 2 * DRAIN_S))
    if link is not None:
        port = LINK_PORT
        bind, connect = f"tcp://*:{port}", f"tcp://{SENDER_ADDRESS}:{port}"
        far_prefix, near_prefix = link.exec_prefix("receiver"), link.exec_prefix("sender")
    else:
        port = free_port_pair()
        bind = connect = f"tcp://127.0.0.1:{port}"
        far_prefix = near_prefix = []
    # Over a link the originals for PSNR would swamp it: a monitor beside the sender gets them.
    far_psnr = settings.psnr and link is None
    monitor_needed = settings.psnr and link is not None
    processes: list[Process] = []
    with ExitStack() as stack:
        stack.callback(lambda: [p.stop(grace=5.0) for p in reversed(processes)])
        receiver = Process(
            "receiver",
            far_prefix
            + python
            + ["receiver", "--connect", connect, "--out", str(out / "receiver")]
            + ["--idle-timeout", idle]
            + common
            + ([] if far_psnr else ["--no-psnr"]),
            out,
            env,
        )
        processes.append(receiver)
        monitor = None
        if monitor_needed:
            # Niced: it measures, and should take CPU from the pair being measured last.
            monitor = Process(
                "monitor",
                near_prefix
                + ["nice", "-n", str(MONITOR_NICENESS)]
                + python
                + ["receiver", "--connect", f"tcp://127.0.0.1:{port}", "--feedback", "off"]
                + ["--out", str(out / "monitor"), "--idle-timeout", idle]
                + common,
                out,
                env,
            )
            processes.append(monitor)
        for process in processes:
            process.wait_for_line("receiver:", START_TIMEOUT_S)
        sender_argv = (
            near_prefix
            + python
            + ["sender", "--source", settings.source, "--bind", bind, "--loop"]
            + ["--fps", f"{settings.fps:g}", "--duration", f"{settings.duration:g}"]
            + ["--warmup", "1.0", "--stats-json", str(out / "sender.json")]
            + common
            + (["--size", size] if size else [])
            + ([] if settings.rate_kbps is None else ["--rate-kbps", f"{settings.rate_kbps:g}"])
            + ([] if settings.psnr else ["--no-reference"])
            + settings.extra_sender_args
        )
        sender = Process("sender", sender_argv, out, env)
        processes.append(sender)
        try:
            sender.popen.wait(settings.duration + START_TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            sender.stop()
        if sender.popen.returncode != 0:
            raise StreamRunError(f"sender failed: {sender.error_line()}")
        # The end-of-stream message stops the receivers; one stuck behind a full link (or
        # whose end message was dropped) is stopped after DRAIN_S with SIGINT.
        deadline = time.monotonic() + DRAIN_S
        for process in (receiver, monitor):
            if process is None:
                continue
            try:
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.stop(grace=20.0)
            if process.popen.returncode != 0:
                raise StreamRunError(f"{process.name} failed: {process.error_line()}")
    return {p.name: p.popen.returncode for p in processes}


def _is_key(record: dict) -> bool:
    kind = record.get("kind")
    if isinstance(kind, str):
        return kind.lower() in KEY_KINDS
    for name in ("keyframe", "key"):
        if isinstance(record.get(name), bool):
            return record[name]
    return False


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    array = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(array.max()),
        "mean": float(array.mean()),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarize(records: list[dict], seconds: float) -> dict:
    """Decoded frames, fps, kbps, PSNR and latency percentiles of ``records``."""
    seconds = max(seconds, 1e-9)
    psnrs = [r["psnr_db"] for r in records if r.get("psnr_db") is not None]
    levels = [r["level"] for r in records if isinstance(r.get("level"), int)]
    return {
        "frames": len(records),
        "seconds": round(seconds, 3),
        "fps": len(records) / seconds,
        "kbps": 8 * sum(r["message_bytes"] for r in records) / seconds / 1000,
        "bpp": (
            8 * sum(r["payload_bytes"] for r in records) / sum(r["pixels"] for r in records)
            if records
            else None
        ),
        "psnr_db": _mean(psnrs),
        "psnr_frames": len(psnrs),
        "latency_ms": _percentiles([r["latency_ms"] for r in records]),
        "key_frames": sum(_is_key(r) for r in records),
        "level_mean": _mean(levels),
    }


def per_second(records: list[dict], t0: float, seconds: int) -> list[dict]:
    """One entry per second of the receiver's clock since its first frame."""
    bins: list[list[dict]] = [[] for _ in range(seconds)]
    missing = [0] * seconds
    previous_seq = None
    for record in records:
        index = min(seconds - 1, int(record["arrival_s"] - t0))
        bins[index].append(record)
        if previous_seq is not None and record["seq"] > previous_seq + 1:
            missing[index] += record["seq"] - previous_seq - 1
        previous_seq = record["seq"]
    series = []
    for second, chosen in enumerate(bins):
        latencies = [r["latency_ms"] for r in chosen]
        psnrs = [r["psnr_db"] for r in chosen if r.get("psnr_db") is not None]
        levels = [r["level"] for r in chosen if isinstance(r.get("level"), int)]
        series.append(
            {
                "t_s": second,
                "frames": len(chosen),
                "fps": float(len(chosen)),
                "kbps": 8 * sum(r["message_bytes"] for r in chosen) / 1000,
                "psnr_db": _mean(psnrs),
                "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
                "latency_ms_p95": float(np.percentile(latencies, 95)) if latencies else None,
                "latency_ms_max": max(latencies) if latencies else None,
                "missing_frames": missing[second],
                "key_frames": sum(_is_key(r) for r in chosen),
                "level_mean": _mean(levels),
            }
        )
    return series


def analyse(settings: StreamSettings, out: Path, link: dict | None) -> dict:
    """``stream.json``'s content from the processes' outputs in ``out``."""
    records = _read_jsonl(out / "receiver" / "frames.jsonl")
    receiver_summary = _read_json(out / "receiver" / "summary.json")
    sender_summary = _read_json(out / "sender.json")
    psnr_source = "receiver" if settings.psnr and link is None else None
    if settings.psnr and link is not None:
        measured = {
            r["seq"]: r["psnr_db"]
            for r in _read_jsonl(out / "monitor" / "frames.jsonl")
            if r.get("psnr_db") is not None
        }
        for record in records:
            record["psnr_db"] = measured.get(record["seq"])
        psnr_source = "monitor receiver beside the sender, joined by sequence number"
    report: dict = {
        "settings": asdict(settings)
        | {
            "size": None if settings.size is None else f"{settings.size[0]}x{settings.size[1]}",
            "rate": "adaptive (receiver feedback)"
            if settings.rate_kbps is None
            else f"{settings.rate_kbps:g} kbps",
            "link": link,
            "psnr_source": psnr_source,
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
            },
        },
        "sender": sender_summary,
        "receiver": receiver_summary,
    }
    if not records:
        report["summary"] = {"frames": 0}
        report["series"] = []
        return report
    t0 = records[0]["arrival_s"]
    seconds = max(1, math.ceil(records[-1]["arrival_s"] - t0 + 1e-9))
    whole = summarize(records, records[-1]["arrival_s"] - t0 or 1.0)
    settled_records = [r for r in records if r["arrival_s"] - t0 >= SETTLE_S]
    settled = (
        summarize(settled_records, records[-1]["arrival_s"] - t0 - SETTLE_S)
        if settled_records
        else None
    )
    sent = sender_summary.get("frames")
    whole |= {
        "frames_sent": sent,
        "frames_captured": (sent or 0) + sender_summary.get("rate_skipped_frames", 0),
        "sender_skipped_frames": sender_summary.get("rate_skipped_frames"),
        "lost_frames": receiver_summary.get("lost_frames"),
        "receiver_skipped_frames": receiver_summary.get("skipped_frames"),
        "not_arrived_at_end": None if sent is None else max(0, sent - 1 - records[-1]["seq"]),
        "key_frames_recorded": any("kind" in r or "keyframe" in r or "key" in r for r in records),
    }
    report["summary"] = whole
    report["summary_after_settling"] = settled and (settled | {"after_s": SETTLE_S})
    report["series"] = per_second(records, t0, seconds)
    report["key_frame_times_s"] = [round(r["arrival_s"] - t0, 3) for r in records if _is_key(r)]
    return report


def plot(report: dict, path: Path) -> None:
    """kbps, PSNR, fps and latency per second, key frames marked; matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    series = report["series"]
    t = [s["t_s"] + 0.5 for s in series]
    settings = report["settings"]
    figure, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)

    def values(key: str) -> list[float]:
        return [np.nan if s[key] is None else s[key] for s in series]

    axes[0].plot(t, values("kbps"), label="received kbps (coded stream)")
    link = settings.get("link")
    if link:
        axes[0].axhline(link["kbps"], color="grey", linestyle="--", label="link rate")
    if settings.get("rate_kbps"):
        axes[0].axhline(settings["rate_kbps"], color="green", linestyle=":", label="--rate-kbps")
    axes[0].set_ylabel("kbps")
    # Markers: on a link PSNR is known only for the frames the monitor decoded.
    axes[1].plot(t, values("psnr_db"), color="tab:purple", marker=".")
    axes[1].set_ylabel("PSNR (dB)")
    axes[2].plot(t, values("fps"), color="tab:green")
    axes[2].set_ylabel("decoded fps")
    axes[3].plot(t, values("latency_ms_p50"), label="p50")
    axes[3].plot(t, values("latency_ms_p95"), label="p95")
    axes[3].plot(t, values("latency_ms_max"), label="max", linewidth=0.7, alpha=0.6)
    axes[3].axhline(300, color="red", linestyle=":", linewidth=0.8, label="300 ms")
    axes[3].set_ylabel("latency (ms)")
    if max((s["latency_ms_max"] or 0) for s in series) > 3000:
        axes[3].set_yscale("log")  # a backlog of seconds and 100 ms of jitter, both readable
        axes[3].yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axes[3].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        axes[3].set_ylim(bottom=0)
    axes[3].set_xlabel("seconds since the receiver's first frame")
    for index, key_time in enumerate(report.get("key_frame_times_s", [])):
        for axis in axes:
            axis.axvline(
                key_time,
                color="tab:orange",
                linewidth=0.6,
                alpha=0.7,
                label="key frame" if index == 0 and axis is axes[0] else None,
            )
    for axis in axes:
        axis.grid(True, alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[3].legend(loc="upper right", fontsize=8)
    link_text = (
        f"link {link['kbps']:g} kbit/s (tbf burst {link['tbf_burst_bytes']} B, queue "
        f"{link['tbf_latency_ms']:g} ms), loss {link['loss']:g}"
        if link
        else "loopback, no shaping"
    )
    key_text = "" if report["summary"].get("key_frames_recorded") else ", no frame kinds recorded"
    axes[0].set_title(
        f"{settings['model']} {settings['size']} {settings['fps']:g} fps, rate "
        f"{settings['rate']}, {link_text}{key_text}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_summary(report: dict) -> None:
    settings, summary = report["settings"], report["summary"]
    link = settings.get("link")
    print(
        f"\nstream: {settings['model']} {settings['size']} at {settings['fps']:g} fps for "
        f"{settings['duration']:g} s from {settings['source']}, rate {settings['rate']}, "
        + (
            f"link {link['kbps']:g} kbit/s both ways (tbf burst {link['tbf_burst_bytes']} B, "
            f"queue {link['tbf_latency_ms']:g} ms), loss {link['loss']:g}"
            if link
            else "loopback"
        )
    )
    load = settings["machine"].get("load_average_1min")
    if load:
        print(
            f"  machine: {settings['machine']['cores']} cores, load average (1 min) "
            f"{load['before']:.1f} before, {load['after']:.1f} after"
        )
    if not summary.get("frames"):
        print("  no frame was decoded")
        return
    columns = [("whole run", summary)]
    if report.get("summary_after_settling"):
        columns.append((f"after {SETTLE_S:g} s", report["summary_after_settling"]))
    rows = [
        ("frames decoded", lambda s: _fmt(s["frames"], "d")),
        ("fps", lambda s: _fmt(s["fps"], ".1f")),
        ("kbps", lambda s: _fmt(s["kbps"], ".0f")),
        ("bpp", lambda s: _fmt(s["bpp"], ".3f")),
        ("PSNR (dB)", lambda s: _fmt(s["psnr_db"], ".2f")),
        ("frames with PSNR", lambda s: _fmt(s["psnr_frames"], "d")),
        ("latency p50 (ms)", lambda s: _fmt(s["latency_ms"]["p50"], ".0f")),
        ("latency p95 (ms)", lambda s: _fmt(s["latency_ms"]["p95"], ".0f")),
        ("latency p99 (ms)", lambda s: _fmt(s["latency_ms"]["p99"], ".0f")),
        ("latency max (ms)", lambda s: _fmt(s["latency_ms"]["max"], ".0f")),
        ("key frames", lambda s: _fmt(s["key_frames"], "d")),
    ]
    print(f"  {'':<20}" + "".join(f"{name:>14}" for name, _ in columns))
    for label, cell in rows:
        print(f"  {label:<20}" + "".join(f"{cell(s):>14}" for _, s in columns))
    print(
        f"  sender: {_fmt(summary['frames_sent'], 'd')} frames sent, "
        f"{_fmt(summary['sender_skipped_frames'], 'd')} skipped by rate control; receiver: "
        f"{_fmt(summary['lost_frames'], 'd')} lost, "
        f"{_fmt(summary['receiver_skipped_frames'], 'd')} skipped (a newer frame waiting), "
        f"{_fmt(summary['not_arrived_at_end'], 'd')} still in flight at the end"
    )
    if link and link.get("qdisc"):
        qdisc = link["qdisc"]
        print(
            f"  link: tbf dropped {_fmt(qdisc.get('sender_tbf_dropped_packets'), 'd')} packets "
            f"towards the receiver, {_fmt(qdisc.get('receiver_tbf_dropped_packets'), 'd')} "
            "back"
            + (
                f"; the loss rule dropped {_fmt(qdisc.get('loss_dropped_packets'), 'd')}"
                if link["loss"]
                else ""
            )
            + " (TCP resends them: loss shows as latency, not as lost frames)"
        )
    if not summary.get("key_frames_recorded"):
        print("  (the receiver's frames.jsonl records no frame kinds: key frames not counted)")


def run_stream(settings: StreamSettings) -> dict:
    """Run the benchmark; writes ``stream.json``, ``stream.png`` and the processes' logs and
    outputs in ``settings.out``. Raises ``StreamSetupError``/``StreamRunError``."""
    check_requirements(settings)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("receiver", "monitor"):
        shutil.rmtree(out / stale, ignore_errors=True)
    (out / "sender.json").unlink(missing_ok=True)
    link_info = None
    load_before = os.getloadavg()[0]
    with _sigterm_as_interrupt(), ExitStack() as stack:
        link = None
        if settings.link_kbps is not None:
            link = stack.enter_context(
                ShapedLink(settings.link_kbps, settings.loss, settings.queue_ms)
            )
            link_info = link.describe()
        stream_processes(settings, out, link)
        if link is not None:
            link_info["qdisc"] = link.qdisc_stats()
    report = analyse(settings, out, link_info)
    # Both ends share this machine's CPUs with whatever else runs: say how busy it was.
    report["settings"]["machine"]["load_average_1min"] = {
        "before": load_before,
        "after": os.getloadavg()[0],
    }
    (out / "stream.json").write_text(json.dumps(report, indent=2))
    if report["series"]:
        plot(report, out / "stream.png")
    print_summary(report)
    return report
