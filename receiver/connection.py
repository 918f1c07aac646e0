"""Why a receiver's socket gets nothing, in words: libzmq's monitor events.

ZeroMQ connects in the background and retries for ever, so a wrong address, a sender that
is not running, a firewall or a CURVE key that the sender refuses all look alike from the
socket: no message. Its monitor tells them apart (checked against libzmq 4.3):

- no ``EVENT_HANDSHAKE_SUCCEEDED`` within ``patience_s`` and no handshake failure: nothing
  accepts the TCP connection (``EVENT_CONNECT_RETRIED`` again and again);
- ``EVENT_HANDSHAKE_FAILED_AUTH``: the sender's allow-list refused this receiver's key;
- ``EVENT_HANDSHAKE_FAILED_NO_DETAIL``: the CURVE handshake broke, as with a ``--server-key``
  that is not the sender's;
- ``EVENT_HANDSHAKE_FAILED_PROTOCOL``: one end uses ``--secure`` and the other does not.
"""

from __future__ import annotations

import time

import zmq
from zmq.utils.monitor import recv_monitor_message

#: The monitor events a ``ConnectionWatch`` reads (pass them to ``get_monitor_socket``
#: before the socket connects, so that none is missed).
WATCHED_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_DISCONNECTED
)


class ConnectionWatch:
    """Follows the monitor of a connecting socket; ``poll()`` returns what to tell the user, each
    problem once (and once more that the connection works after a problem was told).

    ``what`` names the socket's job in the messages (e.g. ``"stream"``), ``consequence``
    says what the user loses while it does not connect."""

    def __init__(
        self,
        monitor: zmq.Socket,
        what: str,
        address: str,
        secure: bool,
        consequence: str = "",
        patience_s: float = 3.0,
        loss_grace_s: float = 2.0,
    ) -> None:
        self.monitor = monitor  # socket.get_monitor_socket(WATCHED_EVENTS), made before connect
        self.what, self.address, self.secure = what, address, secure
        self.consequence = consequence
        self.patience_s = patience_s
        # A loss is told only when it lasts this long and no end of stream came meanwhile: a
        # sender's end message may still wait in this socket's queue when its close shows.
        self.loss_grace_s = loss_grace_s
        self.lost_at: float | None = None
        self.started_s = time.monotonic()
        self.connected = False
        self.ever_connected = False  # a later loss is said as such, not as "no connection"
        self.failed = False  # a handshake failed: the wait is not the address's fault
        self.told: set[str] = set()

    def _tell(self, key: str, text: str) -> list[str]:
        if key in self.told:
            return []
        self.told.add(key)
        return [f"{self.what}: {text}"]

    def poll(self, expected_loss: bool = False) -> list[str]:
        """What to tell the user since the last call. ``expected_loss``: the sender said it
        ends the stream, so a disconnection (now or within ``loss_grace_s`` before) is no
        news and is not told."""
        lines: list[str] = []
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if not self.connected and self.told:
                    lines += [f"{self.what}: connected to {self.address}"]
                    self.told.clear()
                self.connected, self.ever_connected, self.failed = True, True, False
                self.lost_at = None  # back within the grace: nothing to tell
            elif event == zmq.EVENT_DISCONNECTED and self.connected:
                self.connected = False
                self.lost_at = time.monotonic()
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.failed = True
                lines += self._tell(
                    "auth",
                    f"the sender at {self.address} refused this receiver's key: copy its "
                    "public key (the --key file without _secret) into the sender's --allow "
                    "folder",
                )
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self.failed = True
                lines += self._tell(
                    "curve",
                    f"the encrypted handshake with {self.address} fails: is --server-key the "
                    "sender's public key?",
                )
            elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                self.failed = True
                text = (
                    f"this end uses --secure and the sender at {self.address} does not: "
                    "start both with --secure or neither"
                    if self.secure
                    else f"the sender at {self.address} uses --secure: start this end with "
                    "--secure, --key and --server-key"
                )
                lines += self._tell("mechanism", text)
        if self.lost_at is not None:
            if expected_loss:
                self.lost_at = None
            elif time.monotonic() - self.lost_at >= self.loss_grace_s:
                self.lost_at = None
                lines += self._tell("lost", f"lost the connection to {self.address}; retrying")
        waited = time.monotonic() - self.started_s
        if not self.ever_connected and not self.failed and waited >= self.patience_s:
            lines += self._tell(
                "unreachable",
                f"no connection to {self.address} after {self.patience_s:.0f} s (no sender "
                "listening there, a wrong address, or a firewall); still trying"
                + (f". {self.consequence}" if self.consequence else ""),
            )
        return lines
