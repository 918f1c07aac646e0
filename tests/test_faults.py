"""Faults between a sender and a receiver process: sender restart, receiver restart, and
the link cut for 5 s. The stream is a key frame followed by predicted frames only (no
periodic key frames), so every recovery below needs the receiver's key-frame request over
the feedback channel to reach the sender; ZeroMQ reconnects by itself (every 100 ms)."""

import json
import socket
import threading
import time

import zmq

from shared import wire
from shared.codec import ImageCodec
from shared.feedback import FeedbackServer
from shared.video import VideoEncoder, VideoSettings
from tests.conftest import natural_like_image
from tests.test_end_to_end import free_port, start, wait_until_listening


class Streamer:
    """Publishes a moving test scene as key + predicted frames, one every ``period`` s, on a
    PUB socket bound to ``port``, with sequence numbers from ``first_seq``; key frames only
    at the start and on request over the feedback channel (``port + 1`` unless
    ``feedback_port``). ``stop()`` closes the sockets (a dead sender)."""

    def __init__(self, codec: ImageCodec, port: int, first_seq: int, period: float = 0.05):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(f"tcp://127.0.0.1:{port}")
        self.feedback = FeedbackServer(f"tcp://127.0.0.1:{port + 1}", self.context)
        self.encoder = VideoEncoder(codec, VideoSettings(keyframe_interval=1_000_000))
        self.scene = natural_like_image(48, 400)
        self.model = codec.model_hash
        self.seq, self.period = first_seq, period
        self.key_frames = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            if any(report.keyframe for _, report in self.feedback.poll()):
                self.encoder.request_key_frame()
            shift = self.seq % 300
            coded = self.encoder.encode(self.scene[:, shift : shift + 64], 1)
            self.key_frames += coded.kind == "key"
            message = wire.FrameMessage.of(
                "faults", self.seq, time.time_ns() // 1000, self.model, coded
            )
            self.socket.send_multipart(wire.encode_frame(message))
            self.seq += 1
            time.sleep(self.period)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        self.feedback.close()
        self.socket.close()
        self.context.term()
        return self.seq


def receiver_process(tiny_model_path, port, out, env, idle="20", feedback_port=None):
    process = start(
        "receiver",
        [
            "--connect",
            f"tcp://127.0.0.1:{port}",
            "--feedback",
            f"tcp://127.0.0.1:{feedback_port or port + 1}",
            "--model",
            str(tiny_model_path),
            "--threads",
            "1",
            "--keep-running",
            "--idle-timeout",
            idle,
            "--no-psnr",
            "--quiet",
            "--out",
            str(out),
        ],
        env,
    )
    wait_until_listening(process)
    return process


def decoded_seqs(out) -> list[int]:
    return [json.loads(line)["seq"] for line in (out / "frames.jsonl").read_text().splitlines()]


def decoded_kinds(out) -> list[str]:
    return [json.loads(line)["kind"] for line in (out / "frames.jsonl").read_text().splitlines()]


def stop_receiver(process) -> None:
    process.send_signal(2)  # SIGINT: the receiver finishes and writes its outputs
    process.communicate(timeout=30)
    assert process.returncode == 0


def test_sender_restart_resumes_within_a_second(tmp_path, tiny_model_path, subprocess_env):
    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    port, out = free_port(), tmp_path / "rx"
    receiver = receiver_process(tiny_model_path, port, out, subprocess_env)
    first = Streamer(codec, port, 0)
    time.sleep(1.5)
    last_before = first.stop()  # the sender dies mid-stream
    time.sleep(0.5)
    second = Streamer(codec, port, 10_000)  # a restarted sender: new sequence numbers
    time.sleep(1.0)  # frames sent within 1 s of the restart ...
    resumed_by = second.stop()
    stop_receiver(receiver)
    seqs = decoded_seqs(out)
    assert any(s < last_before for s in seqs)
    # ... at least one of them was decoded (the first ~100 ms go to the reconnection).
    after = [s for s in seqs if 10_000 <= s < resumed_by]
    assert len(after) >= 5, seqs[-20:]


def test_receiver_restart_resumes(tmp_path, tiny_model_path, subprocess_env):
    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    port = free_port()
    streamer = Streamer(codec, port, 0)
    try:
        for run in ("first", "second"):
            out = tmp_path / run
            receiver = receiver_process(tiny_model_path, port, out, subprocess_env)
            time.sleep(1.0)
            stop_receiver(receiver)
            assert len(decoded_seqs(out)) >= 5, run
            assert decoded_kinds(out)[0] == "key", run  # asked for on joining
    finally:
        streamer.stop()


class CuttableLink(threading.Thread):
    """A TCP relay between receiver and sender whose link can be cut (all connections
    dropped, new ones refused) and restored."""

    def __init__(self, target_port: int) -> None:
        super().__init__(daemon=True)
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.open: list[socket.socket] = []

    def cut(self) -> None:
        self.up = False
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.open.clear()

    def restore(self) -> None:
        self.up = True

    def run(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
            except OSError:
                return


def test_link_cut_for_five_seconds_recovers(tmp_path, tiny_model_path, subprocess_env):
    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    port, out = free_port(), tmp_path / "rx"
    streamer = Streamer(codec, port, 0)
    link, feedback_link = CuttableLink(port), CuttableLink(port + 1)
    link.start()
    feedback_link.start()
    receiver = receiver_process(
        tiny_model_path, link.port, out, subprocess_env, feedback_port=feedback_link.port
    )
    try:
        time.sleep(1.0)
        link.cut()
        feedback_link.cut()
        cut_at = streamer.seq
        keys_before = streamer.key_frames
        time.sleep(5.0)
        restored_at = streamer.seq
        link.restore()
        feedback_link.restore()
        time.sleep(2.0)
        assert receiver.poll() is None  # neither end restarted
        stop_receiver(receiver)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        streamer.stop()
    seqs = decoded_seqs(out)
    assert any(s < cut_at for s in seqs)
    assert not any(cut_at + 5 < s < restored_at for s in seqs)  # nothing crossed a dead link
    assert len([s for s in seqs if s > restored_at]) >= 10  # and the stream came back
    assert streamer.key_frames > keys_before  # because the receiver asked for a key frame
