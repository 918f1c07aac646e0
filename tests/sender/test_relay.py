"""A relay (XSUB -> XPUB proxy) forwards one sender to several receivers and their reports
back to the sender."""

import time

import zmq

from receiver.subscriber import FrameSubscriber
from sender.relay import Relay
from shared import wire
from shared.codec import ImageCodec
from shared.feedback import FeedbackClient, FeedbackServer
from tests.conftest import natural_like_image
from tests.test_end_to_end import free_port


def test_relay_fans_out_and_forwards_reports(tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    up, down = free_port(), free_port()
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.bind(f"tcp://127.0.0.1:{up}")
    reports = FeedbackServer(f"tcp://127.0.0.1:{up + 1}", context)
    relay = Relay(f"tcp://127.0.0.1:{up}", f"tcp://127.0.0.1:{down}")
    receivers = [
        FrameSubscriber(f"tcp://127.0.0.1:{down}", with_reference=False, context=context)
        for _ in range(3)
    ]
    client = FeedbackClient(f"tcp://127.0.0.1:{down + 1}", context)
    try:
        time.sleep(0.8)  # subscriptions travel receiver -> relay -> sender
        payload = codec.compress(natural_like_image(48, 64), 1, "rgb").payload
        for seq in range(10):
            message = wire.FrameMessage("relay", seq, 0, 64, 48, codec.model_hash, 1, payload)
            publisher.send_multipart(wire.encode_frame(message))
            time.sleep(0.02)
        client.send(wire.ReportMessage("via-relay", 10, 5.0, 0, 3.0, 1.0, keyframe=True))
        time.sleep(0.5)
        for subscriber in receivers:
            seqs = [wire.decode(parts).seq for parts, _ in subscriber.receive_all(500)]
            assert seqs == list(range(10))
        heard = [report.stream for _, report in reports.poll()]
        assert heard == ["via-relay"]
    finally:
        client.close()
        for subscriber in receivers:
            subscriber.close()
        relay.close()
        reports.close()
        publisher.close(linger=0)
        context.term()


def test_secure_relay_encrypts_both_hops_and_admits_only_listed_keys(tiny_model_path, keys):
    from shared.security import ClientSecurity, ServerSecurity, generate_keypair

    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    relay_public, relay_secret = generate_keypair(keys, "relay")
    sender_allowed = keys / "sender-allowed"
    sender_allowed.mkdir()
    (sender_allowed / relay_public.name).write_bytes(relay_public.read_bytes())
    up, down = free_port(), free_port()
    context = zmq.Context()
    sender_security = ServerSecurity(str(keys / "sender.key_secret"), str(sender_allowed))
    publisher = context.socket(zmq.PUB)
    sender_security.apply(publisher)
    publisher.bind(f"tcp://127.0.0.1:{up}")
    reports = FeedbackServer(f"tcp://127.0.0.1:{up + 1}", context, sender_security)
    relay = Relay(
        f"tcp://127.0.0.1:{up}",
        f"tcp://127.0.0.1:{down}",
        upstream_security=ClientSecurity(str(relay_secret), str(keys / "sender.key")),
        downstream_security=ServerSecurity(str(relay_secret), str(keys / "allowed")),
    )

    def client(name: str) -> ClientSecurity:
        return ClientSecurity(str(keys / f"{name}.key_secret"), str(relay_public))

    listed = FrameSubscriber(f"tcp://127.0.0.1:{down}", False, context, client("listed"))
    stranger = FrameSubscriber(f"tcp://127.0.0.1:{down}", False, context, client("stranger"))
    feedback = FeedbackClient(f"tcp://127.0.0.1:{down + 1}", context, client("listed"))
    try:
        time.sleep(1.0)  # handshakes and subscriptions travel receiver -> relay -> sender
        payload = codec.compress(natural_like_image(48, 64), 1, "rgb").payload
        for seq in range(10):
            message = wire.FrameMessage("relay", seq, 0, 64, 48, codec.model_hash, 1, payload)
            publisher.send_multipart(wire.encode_frame(message))
            time.sleep(0.02)
        feedback.send(wire.ReportMessage("secure-relay", 10, 5.0, 0, 3.0, 1.0, keyframe=True))
        time.sleep(0.5)
        got = [wire.decode(parts).seq for parts, _ in listed.receive_all(500)]
        assert got == list(range(10))
        assert stranger.receive_all(300) == []
        assert [report.stream for _, report in reports.poll()] == ["secure-relay"]
    finally:
        feedback.close()
        listed.close()
        stranger.close()
        relay.close()
        reports.close()
        publisher.close(linger=0)
        sender_security.close()
        context.term()
