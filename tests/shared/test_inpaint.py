"""The inpainting network: shapes, compositing, its model file and zoo entry."""

import numpy as np
import pytest
import torch

from shared.modelfile import ModelFileError, load_weights_file, save_weights_file
from shared.models.inpaint import (
    InpaintConfig,
    Inpainter,
    InpaintNet,
    network_input,
    smooth_fill,
)
from shared.registry import AUXILIARY, ZOO, ZOO_DIR, resolve_auxiliary_path
from tests.conftest import natural_like_image


def random_net(seed: int = 0) -> InpaintNet:
    """A network whose output layer is not zero (a fresh one starts as copy-previous)."""
    torch.manual_seed(seed)
    net = InpaintNet(InpaintConfig(fine=8, middle=8, coarse=16, dilations=(1, 2)))
    torch.nn.init.normal_(net.up1[0].weight, std=0.1)
    return net.eval()


def save_net(net: InpaintNet, path) -> str:
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    return save_weights_file(path, "inpaint", net.config.to_dict(), weights, {"test": True})


@pytest.mark.parametrize("with_previous", [True, False])
def test_output_shape_and_known_pixels_are_kept(with_previous):
    net = random_net()
    image = torch.rand(2, 3, 48, 64)
    mask = torch.zeros(2, 1, 48, 64)
    mask[:, :, 16:32] = 1
    previous = torch.rand(2, 3, 48, 64) if with_previous else None
    inputs = network_input(image, mask, previous)
    assert inputs.shape == (2, 8, 48, 64)
    with torch.no_grad():
        out = net(inputs)
    assert out.shape == (2, 3, 48, 64)
    assert torch.equal(out * (1 - mask), image * (1 - mask))
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    hole = out[:, :, 16:32]
    assert not torch.allclose(hole, image[:, :, 16:32])  # the net did fill it


def test_fresh_network_copies_the_previous_frame_or_fills_smoothly():
    inpainter = Inpainter(InpaintNet())
    image = natural_like_image(50, 70, seed=1)  # not a multiple of 8: padded and cropped
    previous = natural_like_image(50, 70, seed=2)
    mask = np.zeros((50, 70), bool)
    mask[10:30, 5:60] = True
    copied = inpainter(image, mask, previous)
    assert copied.shape == image.shape and copied.dtype == np.uint8
    assert np.array_equal(copied[~mask], image[~mask])
    assert np.array_equal(copied[mask], previous[mask])
    smooth = inpainter(image, mask)
    assert np.array_equal(smooth[~mask], image[~mask])
    flat = np.full_like(image, (30, 140, 220))
    assert np.abs(inpainter(flat, mask).astype(int) - flat).max() <= 1


def test_smooth_fill_interpolates_the_border():
    ramp = torch.linspace(0, 1, 64).repeat(1, 1, 40, 1)  # left-right ramp
    known = torch.ones(1, 1, 40, 64)
    known[..., 10:30, 20:44] = 0
    filled = smooth_fill(ramp, known)
    assert torch.equal(filled * known, ramp * known)
    assert float((filled - ramp).abs().max()) < 0.15  # close to the ramp inside the hole
    assert float(smooth_fill(ramp, torch.zeros_like(known)).mean()) == pytest.approx(0.5)


def test_inpainter_rejects_mismatched_inputs():
    inpainter = Inpainter(InpaintNet())
    image = natural_like_image(32, 32)
    with pytest.raises(ValueError, match="mask"):
        inpainter(image, np.zeros((16, 32), bool))
    with pytest.raises(ValueError, match="previous"):
        inpainter(image, np.zeros((32, 32), bool), image[:16])


def test_model_file_round_trip_and_tamper(tmp_path, tiny_model_path):
    net = random_net(3)
    path = tmp_path / "inpaint.safetensors"
    sha = save_net(net, path)
    loaded = Inpainter.load(str(path))
    assert loaded.content_sha256 == sha == load_weights_file(path).content_sha256
    image, mask = natural_like_image(40, 48), np.zeros((40, 48), bool)
    mask[8:24] = True
    assert np.array_equal(
        loaded(image, mask, image[::-1].copy()), Inpainter(net)(image, mask, image[::-1].copy())
    )
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x55
    (tmp_path / "bad.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="content hash"):
        Inpainter.load(str(tmp_path / "bad.safetensors"))
    with pytest.raises(ModelFileError, match="not inpaint"):
        Inpainter.load(str(tiny_model_path))  # a codec's model file
    with pytest.raises(ModelFileError, match="cannot read"):
        Inpainter.load(str(tmp_path / "missing.safetensors"))


def test_shipped_model_is_pinned_and_kept_out_of_the_codec_zoo():
    assert "inpaint" not in ZOO
    if "inpaint" not in AUXILIARY:
        pytest.skip("no inpainting model shipped")
    for name in ("inpaint", "inpaint-image"):
        assert name not in ZOO
        path, pinned = resolve_auxiliary_path(name)
        assert path.parent == ZOO_DIR and path.exists()
        assert Inpainter.load(name).content_sha256 == pinned
