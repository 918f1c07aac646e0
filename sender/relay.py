"""``python -m sender.relay``: forward one sender's stream to many receivers on other
machines, with ZeroMQ's own proxy (XSUB -> XPUB) and the feedback channel back (ROUTER ->
DEALER).

The relay subscribes upstream to exactly the topics its downstream receivers subscribe to
(XPUB passes their subscriptions up), so references for PSNR cross the upstream link only
when some receiver asked for them. Each hop fans out in ZeroMQ's I/O thread without
decoding anything, so a relay costs one copy of the stream on its uplink however many
receivers hang below it, and relays chain into trees for larger audiences (a sender feeds
a few relays, each relay a few hundred receivers, limited by its own uplink bandwidth).
Reports from downstream receivers are forwarded to the sender, which hears the relay's
receivers as one peer.

With ``--secure`` both hops are CURVE-encrypted and authenticated: upstream the relay is a
client of the sender (its public key must be on the sender's allow-list, and it holds the
sender's public key); downstream it is a server with its own key pair and allow-list of
receivers, who hold the relay's public key as their ``--server-key``. The relay decrypts
and re-encrypts; it sees the stream in clear, so run it only on a machine you trust.
"""

from __future__ import annotations

import sys
import threading

import zmq

from shared import wire
from shared.cli import ArgumentParser, zmq_address
from shared.feedback import feedback_address
from shared.security import ClientSecurity, KeyFileError, ServerSecurity


class Relay:
    """Runs the two proxies in background threads until ``close``."""

    def __init__(
        self,
        upstream: str,
        bind: str,
        context: zmq.Context | None = None,
        upstream_security: ClientSecurity | None = None,
        downstream_security: ServerSecurity | None = None,
    ) -> None:
        self.context = context or zmq.Context()
        self.sockets: list[zmq.Socket] = []
        self.downstream_security = downstream_security
        up, down = upstream_security, downstream_security
        try:
            feedback_up, feedback_down = feedback_address(upstream), feedback_address(bind)
        except ValueError:
            raise ValueError(
                f"{upstream!r} -> {bind!r}: the relay needs tcp://HOST:PORT addresses with a "
                "fixed port (its feedback hop uses PORT + 1)"
            ) from None
        try:
            xsub = self._socket(zmq.XSUB, connect=upstream, security=up)
            xpub = self._socket(zmq.XPUB, bind=bind, security=down, hwm=16)
            router = self._socket(zmq.ROUTER, bind=feedback_down, security=down)
            router.setsockopt(zmq.MAXMSGSIZE, wire.MAX_REPORT_BYTES + 64)
            dealer = self._socket(zmq.DEALER, connect=feedback_up, security=up)
        except zmq.ZMQError as error:
            for socket in self.sockets:
                socket.close(linger=0)
            if down is not None:
                down.close()
            self.context.term()
            raise ValueError(error.strerror) from None
        self.threads = [
            threading.Thread(target=self._proxy, args=(xsub, xpub), daemon=True),
            threading.Thread(target=self._forward_reports, args=(router, dealer), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _socket(self, kind: int, bind=None, connect=None, security=None, hwm: int | None = None):
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        if hwm is not None:  # a slow receiver loses frames, not the relay's memory
            socket.setsockopt(zmq.SNDHWM, hwm)
        if security is not None:  # CURVE options must be set before bind/connect
            security.apply(socket)
        self.sockets.append(socket)
        if bind:
            socket.bind(bind)
        else:
            socket.connect(connect)
        return socket

    @staticmethod
    def _proxy(frontend: zmq.Socket, backend: zmq.Socket) -> None:
        """Runs until the context terminates; the sockets are closed by their own thread."""
        try:
            zmq.proxy(frontend, backend)
        except zmq.ZMQError:  # ContextTerminated on close()
            pass
        finally:
            frontend.close(linger=0)
            backend.close(linger=0)

    @staticmethod
    def _forward_reports(router: zmq.Socket, dealer: zmq.Socket) -> None:
        """Reports arrive as ``[receiver id, report]``; upstream gets ``report`` alone, as
        from a receiver of its own (a plain proxy would pass the id up as an extra part)."""
        try:
            while True:
                parts = router.recv_multipart()
                if len(parts) == 2:  # anything else is malformed: the sender would drop it
                    try:
                        dealer.send(parts[1], flags=zmq.NOBLOCK)
                    except zmq.Again:
                        pass
        except zmq.ZMQError:  # ContextTerminated on close()
            pass
        finally:
            router.close(linger=0)
            dealer.close(linger=0)

    def close(self) -> None:
        if self.downstream_security is not None:
            self.downstream_security.close()  # its authenticator's socket first
        self.context.term()  # wakes both proxies with ETERM; returns once they closed
        for thread in self.threads:
            thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m sender.relay", description=__doc__)
    parser.add_argument(
        "--upstream", type=zmq_address, required=True, help="the sender, e.g. tcp://A:5555"
    )
    parser.add_argument(
        "--bind", type=zmq_address, default="tcp://*:5555", help="where receivers connect"
    )
    parser.add_argument(
        "--secure", action="store_true", help="CURVE on both hops (see the module docstring)"
    )
    parser.add_argument("--key", default="keys/relay.key_secret", help="the relay's secret key")
    parser.add_argument("--server-key", default="keys/sender.key", help="the sender's public key")
    parser.add_argument(
        "--allow", default="keys/allowed", help="folder of admitted receivers' public keys"
    )
    args = parser.parse_args(argv)
    try:
        up = down = None
        if args.secure:
            up = ClientSecurity(args.key, args.server_key)
            down = ServerSecurity(args.key, args.allow)
        relay = Relay(args.upstream, args.bind, upstream_security=up, downstream_security=down)
    except (ValueError, KeyFileError) as error:
        print(f"relay: error: {error}", file=sys.stderr)
        return 2
    print(f"relay: {args.upstream} -> {args.bind} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
