import msgpack
import pytest

from shared import wire


def frame(**changes) -> wire.FrameMessage:
    fields = dict(
        stream="cam0",
        seq=7,
        ts_us=1_700_000_000_000_000,
        width=176,
        height=144,
        model="0123456789abcdef",
        level=2,
        payload=b"\x01\x02\x03\x04" * 10,
    )
    fields.update(changes)
    return wire.FrameMessage(**fields)


def body_of(parts):
    return msgpack.unpackb(parts[1], raw=False)


def repack(parts, **changes):
    body = body_of(parts)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return [parts[0], msgpack.packb(body, use_bin_type=True)]


def reason_of(parts) -> str:
    with pytest.raises(wire.WireError) as info:
        wire.decode(parts)
    return info.value.reason


def test_frame_roundtrip():
    message = frame()
    assert wire.decode(wire.encode_frame(message)) == message


def test_reference_and_end_roundtrip():
    ref = wire.ReferenceMessage("cam0", 3, 10, 20, b"png-bytes")
    assert wire.decode(wire.encode_reference(ref)) == ref
    end = wire.EndMessage("cam0", -1, 0)
    assert wire.decode(wire.encode_end(end)) == end


def test_header_fields_are_all_present():
    body = body_of(wire.encode_frame(frame()))
    assert {
        "v",
        "t",
        "stream",
        "seq",
        "ts_us",
        "w",
        "h",
        "model",
        "level",
        "kind",
        "rows",
        "payload",
        "slices",
        "crcs",
    } == set(body)
    assert body["v"] == wire.PROTOCOL_VERSION


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"v": 1}, "protocol_version"),
        ({"v": wire.PROTOCOL_VERSION - 1}, "protocol_version"),
        ({"v": wire.PROTOCOL_VERSION + 1}, "protocol_version"),
        ({"v": ...}, "protocol_version"),
        ({"v": True}, "protocol_version"),
        ({"t": "reference"}, "bad_field"),
        ({"seq": -1}, "out_of_range"),
        ({"seq": "7"}, "bad_field"),
        ({"seq": True}, "bad_field"),
        ({"w": 0}, "out_of_range"),
        ({"w": 100_000}, "out_of_range"),
        ({"h": 2.5}, "bad_field"),
        ({"model": "XYZ"}, "bad_field"),
        ({"model": ...}, "bad_field"),
        ({"level": 999}, "out_of_range"),
        ({"payload": "text"}, "bad_field"),
        ({"payload": b"\x00\x01\x02"}, "bad_payload"),
        ({"payload": b"\x00" * (16 * 176 * 144 + 4100)}, "bad_payload"),
        ({"crcs": [0]}, "checksum"),
        ({"crcs": [0, 0]}, "bad_field"),
        ({"crcs": ...}, "bad_field"),
        ({"slices": [36]}, "bad_payload"),
        ({"slices": [38, 2], "crcs": [0, 0]}, "bad_payload"),
        ({"slices": []}, "bad_field"),
        ({"slices": [0] * 65}, "bad_msgpack"),  # over the unpacker's array limit
        ({"slices": [-4, 44], "crcs": [0, 0]}, "bad_field"),
        ({"kind": "delta"}, "bad_field"),
        ({"kind": ...}, "bad_field"),
        ({"rows": -1}, "out_of_range"),
        ({"stream": ""}, "bad_field"),
        ({"stream": "x" * 65}, "bad_field"),
        ({"stream": "bad\nname"}, "bad_field"),
        ({"ts_us": -5}, "out_of_range"),
    ],
)
def test_invalid_fields_are_rejected_with_a_reason(changes, reason):
    assert reason_of(repack(wire.encode_frame(frame()), **changes)) == reason


def test_sliced_frame_roundtrip_and_a_damaged_slice_is_reported_not_rejected():
    message = frame(kind="inter", slice_rows=8, slice_bytes=(8, 24, 8))
    assert wire.decode(wire.encode_frame(message)) == message
    parts = wire.encode_frame(message)
    body = body_of(parts)
    body["payload"] = body["payload"][:8] + b"\xff" * 4 + body["payload"][12:]
    decoded = wire.decode([parts[0], msgpack.packb(body, use_bin_type=True)])
    assert decoded.damaged == frozenset({1})
    assert decoded.slices()[0] == message.slices()[0]


def test_corrupted_payload_fails_the_checksum():
    parts = wire.encode_frame(frame())
    body = body_of(parts)
    body["payload"] = b"\x01\x02\x03\x05" + body["payload"][4:]
    assert reason_of([parts[0], msgpack.packb(body, use_bin_type=True)]) == "checksum"


@pytest.mark.parametrize(
    "changes",
    [
        {"stream": "cam1"},
        {"seq": 8},
        {"ts_us": 1_700_000_000_000_001},
        {"w": 160},
        {"h": 128},
        {"model": "0123456789abcdee"},
        {"level": 5},
        {"kind": "inter"},
        {"rows": 4},
        {"slices": [8, 24, 8]},
    ],
)
def test_a_changed_header_field_fails_every_slice_crc(changes):
    # A header damaged in transit must not decode into a different (drifting) picture.
    message = frame(kind="key", slice_rows=8, slice_bytes=(8, 16, 16))
    assert reason_of(repack(wire.encode_frame(message), **changes)) == "checksum"


@pytest.mark.parametrize(
    "parts, reason",
    [
        ([b"lc.frame"], "bad_framing"),
        ([b"lc.frame", b"x", b"y"], "bad_framing"),
        ([b"other", b"\x80"], "bad_topic"),
        ([b"lc.frame", b"\xc1"], "bad_msgpack"),
        ([b"lc.frame", b""], "bad_msgpack"),
        ([b"lc.frame", msgpack.packb([1, 2, 3])], "bad_msgpack"),
        ([b"lc.frame", msgpack.packb({1: 2})], "bad_msgpack"),
    ],
)
def test_malformed_messages_are_rejected(parts, reason):
    assert reason_of(parts) == reason


def test_truncations_never_crash():
    raw = wire.encode_frame(frame())
    for cut in range(len(raw[1])):
        with pytest.raises(wire.WireError):
            wire.decode([raw[0], raw[1][:cut]])
