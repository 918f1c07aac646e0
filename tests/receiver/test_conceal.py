"""Concealment of damaged slices: the methods, the fallback, and streams with dropped slices
(simulated at the receiver in process, and at a real sender in a separate process)."""

import json

import numpy as np
import pytest

from receiver.app import Receiver
from receiver.conceal import Concealer, damaged_mask
from receiver.stats import StreamStats
from sender.publisher import break_slice_crcs
from shared import wire
from shared.codec import ImageCodec
from shared.modelfile import ModelFileError, save_weights_file
from shared.models.inpaint import Inpainter, InpaintNet
from shared.video import VideoEncoder, VideoSettings
from tests.conftest import natural_like_image
from tests.test_end_to_end import (
    free_port,
    receiver_args,
    sample_sender_args,
    start,
    wait_until_listening,
)


@pytest.fixture(scope="module")
def inpaint_model_path(tmp_path_factory):
    net = InpaintNet()  # untrained: it starts as copy-previous, enough to exercise the path
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    path = tmp_path_factory.mktemp("inpaint") / "inpaint.safetensors"
    save_weights_file(path, "inpaint", net.config.to_dict(), weights, {"test": True})
    return path


def test_methods_fill_only_the_damaged_bands(inpaint_model_path):
    rgb, previous = natural_like_image(96, 64, seed=1), natural_like_image(96, 64, seed=2)
    mask = damaged_mask(96, 64, [1], slice_rows=2, stride=16)
    assert mask[32:64].all() and not mask[:32].any() and not mask[64:].any()
    gray = Concealer("gray")(rgb, previous, [1], 2, 16)
    copy = Concealer("copy")(rgb, previous, [1], 2, 16)
    moved = Concealer("motion")(rgb, previous, [1], 2, 16)
    inpainter = Inpainter.load(str(inpaint_model_path))
    inpaint = Concealer("inpaint", inpainter)
    filled = inpaint(rgb, previous, [1], 2, 16)
    for out in (gray, copy, moved, filled):
        assert np.array_equal(out[~mask], rgb[~mask])
    assert (gray[mask] == 128).all()
    assert np.array_equal(copy[mask], previous[mask])
    # The untrained network copies the previous picture it is given: the motion-compensated
    # one, or the plain one with motion=False.
    assert np.array_equal(filled, moved)
    unmoved = Concealer("inpaint", inpainter, motion=False)(rgb, previous, [1], 2, 16)
    assert np.array_equal(unmoved, copy)
    assert inpaint.bands == 1
    # No previous picture: copy leaves the decoded band, inpainting fills from context.
    assert np.array_equal(Concealer("copy")(rgb, None, [1], 2, 16), rgb)
    assert inpaint(rgb, None, [1], 2, 16).shape == rgb.shape


def test_inpaint_copies_where_the_surroundings_did_not_change():
    """The gate: a run of damaged bands whose neighbouring rows equal the previous
    picture's is copied without running the network; one whose neighbours moved is
    inpainted."""

    class Recording:
        def __init__(self):
            self.calls = 0

        def __call__(self, image, mask, previous):
            self.calls += 1
            out = image.copy()
            out[mask.astype(bool)] = 7
            return out

    previous = natural_like_image(160, 64, seed=2)
    rgb = previous.copy()
    rgb[96:] = natural_like_image(64, 64, seed=5)  # rows 96.. moved; 0..95 are still
    network = Recording()
    concealer = Concealer("inpaint", network)
    out = concealer(rgb, previous, [1, 4], slice_rows=1, stride=16)
    # Bands 1 and 4 (rows 16..31 and 64..79, 32 intact rows apart) are one group; the rows
    # around both (0..15, 32..63, 80..95) are unchanged -> copied
    assert np.array_equal(out[16:32], previous[16:32])
    assert np.array_equal(out[64:80], previous[64:80])
    assert np.array_equal(out[32:64], rgb[32:64])
    assert network.calls == 0 and concealer.copied == 1
    out = concealer(rgb, previous, [6], slice_rows=1, stride=16)  # rows 96..111: moved
    assert (out[96:112] == 7).all() and network.calls == 1


def test_context_change_measures_the_rows_around_the_hole():
    from shared.models.inpaint import context_change

    previous = np.zeros((64, 8, 3), np.uint8)
    current = previous.copy()
    current[:4] = 30  # more than 16 rows above the hole: ignored
    current[36:40] = 16  # 4 of the 32 rows within 16 of the hole
    hole = np.zeros((64, 8), bool)
    hole[20:24] = True
    assert context_change(current, previous, hole) == pytest.approx(16 * 4 / 32)
    assert context_change(current, previous, np.zeros((64, 8), bool)) is None
    assert context_change(current, previous, np.ones((64, 8), bool)) is None


def test_inpaint_falls_back_to_copy_without_the_bundled_model(monkeypatch):
    import shared.models.inpaint as inpaint

    def missing(name="inpaint"):
        raise ModelFileError(f"cannot read model file {name}")

    monkeypatch.setattr(inpaint.Inpainter, "load", staticmethod(missing))
    logs = []
    concealer = Concealer.create("inpaint", None, logs.append)
    assert concealer.method == "copy" and "copy-previous" in logs[0]
    with pytest.raises(ValueError):
        Concealer("blur")


def test_the_bundled_concealer_fills_frames_without_a_previous_picture_with_inpaint_image():
    from shared.registry import AUXILIARY

    concealer = Concealer.create("inpaint", None)
    assert concealer.inpainter.content_sha256 == AUXILIARY["inpaint"][1]
    assert concealer.image_inpainter.content_sha256 == AUXILIARY["inpaint-image"][1]
    used = []

    def spy(name, network):
        def run(image, hole, part):
            used.append((name, part is None))
            return network(image, hole, part)

        return run

    for name in ("inpainter", "image_inpainter"):
        setattr(concealer, name, spy(name, getattr(concealer, name)))
    rgb, previous = natural_like_image(96, 64, seed=3), natural_like_image(96, 64, seed=4)
    first = concealer(rgb, None, [1], 2, 16)  # the stream's first frame: nothing to copy
    concealer(rgb, previous, [1], 2, 16)  # rows around changed: the network, not a copy
    assert used == [("image_inpainter", True), ("inpainter", False)]
    mask = damaged_mask(96, 64, [1], 2, 16)
    assert np.array_equal(first[~mask], rgb[~mask]) and not np.array_equal(first, rgb)
    # A network named on the command line serves both cases.
    named = Concealer.create("inpaint", "inpaint-image")
    assert named.image_inpainter is named.inpainter


def test_a_named_inpainting_model_that_does_not_load_is_an_error(tmp_path):
    logs = []
    with pytest.raises(ModelFileError, match="--inpaint-model"):
        Concealer.create("inpaint", str(tmp_path / "none.safetensors"), logs.append)
    assert logs == []


def test_many_lost_slices_cost_one_network_pass_and_keep_the_bands_between(
    inpaint_model_path,
):
    # Every other one-row slice lost (a hostile or broken sender): the runs are concealed
    # together, in one pass of the network, not one pass per run.
    height, width = 512, 64
    rgb, previous = natural_like_image(height, width, seed=1), natural_like_image(height, width)
    damaged = list(range(0, height // 16, 2))
    mask = damaged_mask(height, width, damaged, slice_rows=1, stride=16)
    inpainter = Inpainter.load(str(inpaint_model_path))
    calls = []

    def counting(image, hole, part):
        calls.append(image.shape[0])
        return inpainter(image, hole, part)

    for method, fill in (("inpaint", counting), ("motion", None)):
        concealer = Concealer(method, fill)
        out = concealer(rgb, previous, damaged, 1, 16)
        assert np.array_equal(out[~mask], rgb[~mask]), method  # the intact bands between
        assert concealer.bands == len(damaged)
    assert calls == [height]
    # Runs further apart than both their context windows stay separate.
    calls.clear()
    Concealer("inpaint", counting)(rgb, previous, [0, 31], 1, 16)
    assert len(calls) == 2


def stream(codec, count, drop=None):
    """Wire messages of a 128x96 stream of predicted frames, 2 slices each; ``drop`` breaks
    the CRC of slice 1 on frames ``drop``."""
    encoder = VideoEncoder(codec, VideoSettings(slice_rows=4))
    scene = natural_like_image(96, 160, seed=5)
    messages = []
    for seq in range(count):
        coded = encoder.encode(np.ascontiguousarray(scene[:, seq : seq + 128]), 0)
        fields = (coded.width, coded.height, codec.model_hash, 0, coded.payload)
        message = wire.FrameMessage("s", seq, 0, *fields, coded.kind, 4, coded.slice_bytes)
        parts = wire.encode_frame(message)
        if drop and seq in drop:
            parts[1] = break_slice_crcs(parts[1], [1])
        messages.append(parts)
    return messages


def test_receiver_conceals_dropped_slices_and_asks_for_a_key_frame(
    tiny_model_path, inpaint_model_path
):
    codec = ImageCodec.load(str(tiny_model_path))
    requests = []
    receiver = Receiver(
        codec, StreamStats(), log=print, request_key_frame=lambda: requests.append(1)
    )
    receiver.concealer = Concealer("inpaint", Inpainter.load(str(inpaint_model_path)))
    for parts in stream(codec, 6, drop={2, 4}):
        receiver.handle(parts, len(parts[1]), 0.0)
    records = receiver.stats.records
    assert [r.seq for r in records] == list(range(6))  # every frame shown
    assert [r.damaged_slices for r in records] == [0, 0, 1, 0, 1, 0]
    assert receiver.concealer.bands == 2 and requests


def test_receiver_side_drops(tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path))
    receiver = Receiver(codec, StreamStats(), log=print)
    receiver.drop_slices = 0.3
    receiver.drop_rng = np.random.default_rng(1)
    for parts in stream(codec, 12):
        receiver.handle(parts, len(parts[1]), 0.0)
    damaged = sum(r.damaged_slices for r in receiver.stats.records)
    assert damaged > 0 and receiver.concealer.bands == damaged


def test_sender_drop_slices_reach_a_real_receiver(
    tmp_path, tiny_model_path, inpaint_model_path, subprocess_env
):
    address = f"tcp://127.0.0.1:{free_port()}"
    receiver = start(
        "receiver",
        receiver_args(
            address,
            tiny_model_path,
            tmp_path / "rx",
            *("--idle-timeout", "30", "--conceal", "inpaint"),
            *("--inpaint-model", str(inpaint_model_path)),
        ),
        subprocess_env,
    )
    line = wait_until_listening(receiver)
    assert "concealment inpaint" in line
    sender = start(
        "sender",
        sample_sender_args(
            address,
            tiny_model_path,
            "176x144",
            4,
            *("--slice-rows", "4", "--drop-slices", "0.2"),
            *("--stats-json", str(tmp_path / "tx.json")),
        ),
        subprocess_env,
    )
    for process in (sender, receiver):
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    sent = json.loads((tmp_path / "tx.json").read_text())
    summary = json.loads((tmp_path / "rx" / "summary.json").read_text())
    assert sent["dropped_slices"] > 0
    assert summary["frames"] > 20 and summary["damaged_slices"] > 0
    assert summary["concealment"] == "inpaint" and summary["concealed_bands"] > 0
    assert sent["keyframe_requests"] > 0  # out of sync after a damaged slice: key frame


def test_cli_rejects_a_bad_probability(capsys):
    from receiver.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["--drop-slices", "1.5"])
    assert stop.value.code == 2
    assert "probability" in capsys.readouterr().err
