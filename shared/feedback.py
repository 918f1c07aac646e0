"""The feedback channel: receivers report to the sender (ZeroMQ DEALER -> ROUTER).

Beside the PUB/SUB data path (one way, fan-out), each receiver connects a DEALER socket to
the sender's ROUTER socket and sends a ``wire.ReportMessage`` every second and a key-frame
request when it joins. The sender reads them without blocking between frames. With
``--secure`` both sockets use the same CURVE keys and allow-list as the data path, so
feedback is encrypted and only listed receivers are heard.
"""

from __future__ import annotations

import zmq

from . import wire
from .security import ClientSecurity, ServerSecurity

REPORT_HIGH_WATER_MARK = 8  # reports queued per peer; older ones are not worth keeping


def feedback_address(data_address: str) -> str:
    """The default feedback address: the data address's port + 1 (``tcp://h:5555`` ->
    ``tcp://h:5556``)."""
    head, _, port = data_address.rpartition(":")
    if not port.isdigit() or not head.startswith("tcp://"):
        raise ValueError(f"give the feedback address explicitly for {data_address!r}")
    return f"{head}:{int(port) + 1}"


class FeedbackServer:
    """The sender's ROUTER socket: ``poll()`` returns ``(peer id, report)`` pairs and counts
    invalid messages by reason."""

    def __init__(
        self, bind: str, context: zmq.Context, security: ServerSecurity | None = None
    ) -> None:
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.RCVHWM, REPORT_HIGH_WATER_MARK)
        self.socket.setsockopt(zmq.MAXMSGSIZE, wire.MAX_REPORT_BYTES + 64)
        self.socket.setsockopt(zmq.LINGER, 0)
        if security is not None:
            security.apply(self.socket)
        try:
            self.socket.bind(bind)
        except zmq.ZMQError as error:
            self.socket.close()
            raise ValueError(f"cannot bind feedback {bind}: {error.strerror}") from None
        self.rejected: dict[str, int] = {}

    def poll(self, limit: int = 64) -> list[tuple[bytes, wire.ReportMessage]]:
        """The ``(peer id, report)`` pairs waiting, reading at most ``limit`` messages (valid
        or not: a flood of invalid ones must not hold up the sender's frame loop)."""
        reports = []
        for _ in range(limit):
            if not self.socket.poll(0, zmq.POLLIN):
                break
            parts = self.socket.recv_multipart()
            try:
                if len(parts) != 2:
                    raise wire.WireError("bad_framing", f"{len(parts)} parts")
                reports.append((parts[0], wire.decode_report(parts[1])))
            except wire.WireError as error:
                self.rejected[error.reason] = self.rejected.get(error.reason, 0) + 1
        return reports

    def close(self) -> None:
        self.socket.close()


class FeedbackClient:
    """The receiver's DEALER socket; ``send`` never blocks (a report is dropped instead)."""

    def __init__(
        self,
        connect: str,
        context: zmq.Context,
        security: ClientSecurity | None = None,
        monitor_events: int = 0,
    ) -> None:
        """``monitor_events``: when not 0, ``self.monitor`` is a monitor socket for these
        libzmq events, made before connecting (so none is missed); else ``None``."""
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.SNDHWM, REPORT_HIGH_WATER_MARK)
        self.socket.setsockopt(zmq.LINGER, 0)
        if security is not None:
            security.apply(self.socket)
        self.monitor = self.socket.get_monitor_socket(monitor_events) if monitor_events else None
        try:
            self.socket.connect(connect)
        except zmq.ZMQError as error:
            if self.monitor is not None:
                self.monitor.close(linger=0)
            self.socket.close()
            raise ValueError(f"cannot connect feedback to {connect}: {error.strerror}") from None

    def send(self, report: wire.ReportMessage) -> bool:
        try:
            self.socket.send(wire.encode_report(report), flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def close(self) -> None:
        if self.monitor is not None:
            self.socket.disable_monitor()
            self.monitor.close(linger=0)
        self.socket.close()
