"""A receiver that gets nothing says why: nothing listening, a refused key, a wrong server
key, or --secure on one end only (``receiver.connection``)."""

import time

import pytest
import zmq

from receiver.subscriber import FrameSubscriber
from shared.security import ClientSecurity, ServerSecurity
from tests.test_end_to_end import free_port


def lines_from(subscriber, secure: bool, seconds: float = 1.5, patience_s: float = 0.5):
    from receiver.connection import ConnectionWatch

    watch = ConnectionWatch(subscriber.monitor, "stream", "ADDRESS", secure, patience_s=patience_s)
    lines, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines += watch.poll()
        time.sleep(0.02)
    return lines


@pytest.fixture
def sender_socket():
    """A PUB socket bound like a sender's: ``bind(secure_with=None | keys folder)``."""
    made = []

    def bind(keys=None):
        context = zmq.Context.instance()
        socket = context.socket(zmq.PUB)
        security = None
        if keys is not None:
            security = ServerSecurity(keys / "sender.key_secret", keys / "allowed")
            security.apply(socket)
        port = free_port()
        socket.bind(f"tcp://127.0.0.1:{port}")
        made.append((socket, security))
        return f"tcp://127.0.0.1:{port}"

    yield bind
    for socket, security in made:
        socket.close(linger=0)
        if security is not None:
            security.close()


def subscriber(address, keys=None, key="listed", server_key="sender"):
    security = None
    if keys is not None:
        security = ClientSecurity(keys / f"{key}.key_secret", keys / f"{server_key}.key")
    return FrameSubscriber(address, security=security)


def test_a_working_connection_says_nothing(sender_socket, keys):
    for secure in (None, keys):
        receiver = subscriber(sender_socket(secure), secure)
        assert lines_from(receiver, secure is not None) == []
        receiver.close()


def test_nothing_listening_is_said_once_after_the_patience():
    receiver = subscriber(f"tcp://127.0.0.1:{free_port()}")
    lines = lines_from(receiver, False)
    receiver.close()
    assert len(lines) == 1 and "no connection to ADDRESS after" in lines[0]


@pytest.mark.parametrize(
    "server_secure, client, fragment",
    [
        (True, {"key": "stranger"}, "refused this receiver's key"),
        (True, {"server_key": "stranger"}, "is --server-key the sender's public key"),
        (True, None, "uses --secure: start this end with --secure"),
        (False, {}, "this end uses --secure and the sender"),
    ],
)
def test_handshake_failures_say_which_key_or_option(
    sender_socket, keys, server_secure, client, fragment
):
    address = sender_socket(keys if server_secure else None)
    receiver = subscriber(address, keys if client is not None else None, **(client or {}))
    lines = lines_from(receiver, client is not None)
    receiver.close()
    assert len(lines) == 1 and fragment in lines[0], lines


def sender_and_watch(loss_grace_s: float):
    """A bound PUB socket standing for a sender, and the ``ConnectionWatch`` of a subscriber
    connected to it: ``(address, sender, subscriber, watch)``."""
    from receiver.connection import ConnectionWatch

    address = f"tcp://127.0.0.1:{free_port()}"
    sender = zmq.Context.instance().socket(zmq.PUB)
    sender.bind(address)
    receiver = subscriber(address)
    watch = ConnectionWatch(
        receiver.monitor, "stream", "ADDRESS", False, patience_s=0.2, loss_grace_s=loss_grace_s
    )
    return address, sender, receiver, watch


def collect(watch, seconds: float, ended: bool = False) -> list[str]:
    """Everything ``watch`` tells within ``seconds`` (``ended``: the end message was read)."""
    lines, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines += watch.poll(expected_loss=ended)
        time.sleep(0.02)
    return lines


def test_a_lost_connection_is_said_as_lost_then_found_again():
    address, sender, receiver, watch = sender_and_watch(loss_grace_s=0.3)
    try:
        assert collect(watch, 0.5) == []
        sender.close(linger=0)  # the sender stops
        lost = collect(watch, 1.0)
        assert len(lost) == 1 and "lost the connection to ADDRESS" in lost[0], lost
        sender = zmq.Context.instance().socket(zmq.PUB)
        sender.bind(address)  # and comes back
        assert collect(watch, 2.0) == ["stream: connected to ADDRESS"]
    finally:
        receiver.close()
        sender.close(linger=0)


def test_a_disconnection_before_or_after_the_senders_end_message_is_not_news():
    """The sender's sockets close right after its end message; a busy receiver may see the
    close before it reads that message from its queue: within the grace, nothing is told."""
    _, sender, receiver, watch = sender_and_watch(loss_grace_s=1.0)
    try:
        assert collect(watch, 0.5) == [] and watch.connected
        sender.close(linger=0)
        assert collect(watch, 0.4) == []  # the close is seen, the end not read yet
        assert not watch.connected
        assert collect(watch, 1.5, ended=True) == []  # then the end: past the grace, silent
    finally:
        receiver.close()
