import numpy as np
import pytest

from shared.frames import padded_size, rgb_to_tensor, tensor_to_rgb, to_rgb


def test_bgr_and_rgb_are_handled_explicitly():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV order
    assert (to_rgb(bgr, "bgr")[..., 2] == 200).all()
    assert (to_rgb(bgr, "rgb")[..., 0] == 200).all()


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_grayscale_is_replicated(shape):
    gray = np.arange(35, dtype=np.uint8).reshape(shape)
    rgb = to_rgb(gray, "bgr")
    assert rgb.shape == (5, 7, 3)
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_alpha_is_dropped():
    rgba = np.full((4, 4, 4), 9, np.uint8)
    assert to_rgb(rgba, "rgb").shape == (4, 4, 3)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((5000, 4, 3), np.uint8),
    ],
)
def test_bad_frames_are_refused(frame):
    with pytest.raises(ValueError):
        to_rgb(frame, "rgb")


@pytest.mark.parametrize("height, width", [(1, 1), (15, 17), (144, 176), (481, 321)])
def test_pad_and_crop_back(height, width):
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    tensor = rgb_to_tensor(rgb, 16)
    assert tensor.shape[2:] == padded_size(height, width, 16)
    assert tensor.shape[2] % 16 == 0 and tensor.shape[3] % 16 == 0
    np.testing.assert_array_equal(tensor_to_rgb(tensor, height, width), rgb)


def test_rgb_tail_is_the_convolution_and_pixel_shuffle_it_replaces():
    """Same pixels as ``tensor_to_rgb`` of the layers' output (a float32 sum order may move
    a rare pixel by one level), cropped, for channels-last and NCHW features."""
    import torch
    from torch import nn

    from shared.frames import RgbTail

    torch.manual_seed(0)
    synthesis = nn.Sequential(nn.ReLU(), nn.Conv2d(8, 3 * 16, 1), nn.PixelShuffle(4))
    tail = RgbTail.of(synthesis)
    assert tail is not None
    latents = torch.randn(1, 8, 7, 9) * 0.3 + 0.2
    with torch.no_grad():
        expected = tensor_to_rgb(synthesis(latents), 26, 33)
        features = synthesis[:-2](latents)  # what enters the tail
        for layout in (torch.channels_last, torch.contiguous_format):
            got = tail(features.contiguous(memory_format=layout), 26, 33)
            assert got.shape == (26, 33, 3) and got.dtype == np.uint8
            assert got.flags["C_CONTIGUOUS"]  # as OpenCV wants it
            difference = np.abs(got.astype(int) - expected)
            assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_rgb_tail_only_takes_a_1x1_convolution_to_rgb_then_a_pixel_shuffle():
    from torch import nn

    from shared.frames import RgbTail

    def tail_of(*layers):
        return RgbTail.of(nn.Sequential(nn.ReLU(), *layers))

    assert tail_of(nn.Conv2d(8, 12, 1), nn.PixelShuffle(2)) is not None
    assert tail_of(nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2)) is None
    assert tail_of(nn.Conv2d(8, 24, 1), nn.PixelShuffle(2)) is None  # not 3 channels
    assert tail_of(nn.Conv2d(8, 12, 1, bias=False), nn.PixelShuffle(2)) is None
    assert tail_of(nn.Conv2d(8, 12, 1, padding=1), nn.PixelShuffle(2)) is None
    assert tail_of(nn.PixelShuffle(2), nn.Conv2d(3, 3, 1)) is None
    assert RgbTail.of(nn.Conv2d(8, 12, 1)) is None
