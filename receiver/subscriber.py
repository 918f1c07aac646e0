"""``FrameSubscriber``: a ZeroMQ SUB socket that yields validated wire messages."""

from __future__ import annotations

import zmq

from shared import wire
from shared.security import ClientSecurity

from .connection import WATCHED_EVENTS

RECEIVE_HIGH_WATER_MARK = 64


class FrameSubscriber:
    """Connects to a sender's PUB socket at ``connect`` (e.g. ``tcp://host:5555``).

    ``with_reference`` subscribes to the lossless originals too (for PSNR); without it the
    publisher does not send them to this receiver at all.
    """

    def __init__(
        self,
        connect: str,
        with_reference: bool = True,
        context: zmq.Context | None = None,
        security: ClientSecurity | None = None,
    ) -> None:
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, RECEIVE_HIGH_WATER_MARK)
        self.socket.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES + 1024)
        self.socket.setsockopt(zmq.LINGER, 0)
        if security is not None:
            security.apply(self.socket)
        # Made before connecting, so the connection's first events are not missed.
        self.monitor = self.socket.get_monitor_socket(WATCHED_EVENTS)
        for topic in (wire.TOPIC_FRAME, wire.TOPIC_END):
            self.socket.setsockopt(zmq.SUBSCRIBE, topic)
        if with_reference:
            self.socket.setsockopt(zmq.SUBSCRIBE, wire.TOPIC_REFERENCE)
        try:
            self.socket.connect(connect)
        except zmq.ZMQError as error:
            self.monitor.close(linger=0)
            self.socket.close()
            raise ValueError(f"cannot connect to {connect}: {error.strerror}") from None

    def receive(self, timeout_ms: int) -> tuple[list[bytes] | None, int]:
        """The next raw multipart message (``None`` on timeout) and its total size in bytes."""
        if not self.socket.poll(timeout_ms, zmq.POLLIN):
            return None, 0
        parts = self.socket.recv_multipart(copy=True)
        return parts, sum(len(p) for p in parts)

    def receive_all(self, timeout_ms: int, limit: int = RECEIVE_HIGH_WATER_MARK) -> list:
        """Wait up to ``timeout_ms`` for one message, then take every message already
        waiting (at most ``limit``): a list of ``(parts, size_bytes)``."""
        batch = []
        parts, size = self.receive(timeout_ms)
        while parts is not None:
            batch.append((parts, size))
            if len(batch) >= limit:
                break
            parts, size = self.receive(0)
        return batch

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close()
