"""Sparse codes, visibly: the code map, --show-code's view and the end-of-run strip."""

import cv2
import numpy as np
import pytest

from receiver.app import Receiver, write_outputs
from receiver.display import StripSampler, code_view, write_strip
from receiver.stats import StreamStats
from shared.codec import ImageCodec
from shared.codemap import code_image, zero_share
from tests.conftest import natural_like_image
from tests.receiver.test_receiver import frame_parts, reference_parts
from tests.test_end_to_end import run_pair


def sparse_latents() -> np.ndarray:
    latents = np.zeros((4, 3, 5), dtype=np.int64)
    latents[0, 0, 0] = 1  # small
    latents[:, 1, 2] = [10, -20, 5, 0]  # large
    latents[2, 2, 4] = -3
    return latents


@pytest.mark.parametrize("mode", ["l1", "pca"])
def test_code_map_is_frame_sized_and_black_where_the_code_is_zero(mode):
    latents = sparse_latents()
    image = code_image(latents, 40, 70, stride=16, mode=mode)
    assert image.shape == (40, 70, 3) and image.dtype == np.uint8
    active = np.any(latents != 0, axis=0)
    for row in range(3):
        for col in range(5):
            cell = image[16 * row : 16 * row + 16, 16 * col : 16 * col + 16]
            assert (cell == cell[0, 0]).all()  # nearest-neighbour blocks
            assert cell.any() == active[row, col]  # black exactly where all channels are 0
    assert zero_share(latents) == pytest.approx(1 - 5 / 60)


def test_l1_map_is_brighter_where_more_is_spent():
    image = code_image(sparse_latents(), 48, 80, stride=16, mode="l1")
    brightness = image.astype(int).sum(axis=2)
    assert brightness[16 + 8, 32 + 8] > brightness[8, 8] > 0
    with pytest.raises(ValueError):
        code_image(sparse_latents(), 48, 80, mode="nope")
    assert not code_image(np.zeros((4, 3, 5)), 48, 80).any()  # an all-zero code is black


def test_code_view_puts_the_code_beside_the_reconstruction():
    rgb = natural_like_image(48, 80)
    view = code_view(sparse_latents(), rgb, 16)
    assert view.shape == (48, 160, 3)
    assert (view[:, :80] == rgb).all() and (view[:, 80:] != rgb).any()


def test_code_view_adds_the_original_or_says_it_did_not_arrive():
    rgb = natural_like_image(48, 80)
    original = 255 - rgb
    view = code_view(sparse_latents(), rgb, 16, original, with_original=True)
    assert view.shape == (48, 240, 3)
    assert (view[:, :80] == rgb).all() and (view[30:, 160:] == original[30:]).all()
    missing = code_view(sparse_latents(), rgb, 16, None, with_original=True)
    assert missing.shape == (48, 240, 3) and (missing[30:, 160:] == 64).all()


def read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_show_code_records_reconstruction_code_and_its_own_original(
    tmp_path, image_folder, tiny_model_path, subprocess_env
):
    paths = sorted(image_folder.iterdir())
    sources = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in paths]
    args = ["--source", str(image_folder), "--model", str(tiny_model_path), "--fps", "20"]
    video = tmp_path / "code.mp4"
    receiver_args = ["--model", str(tiny_model_path), "--show-code", "--record", str(video)]
    run_pair(tmp_path, subprocess_env, args, receiver_args)
    frames = read_video(video)
    assert len(frames) == len(sources) and frames[0].shape == (144, 3 * 176, 3)
    for index, frame in enumerate(frames):
        # Below the label, the right panel is this frame's own original (mp4v is lossy).
        errors = [np.abs(frame[30:, 352:].astype(int) - s[30:]).mean() for s in sources]
        assert int(np.argmin(errors)) == index and errors[index] < 6
    no_psnr = tmp_path / "no_psnr.mp4"
    receiver_args = ["--model", str(tiny_model_path), "--show-code", "--no-psnr"]
    run_pair(tmp_path, subprocess_env, args, [*receiver_args, "--record", str(no_psnr)])
    assert read_video(no_psnr)[0].shape == (144, 2 * 176, 3)


def test_sampler_keeps_a_few_frames_spread_over_the_run():
    sampler = StripSampler(capacity=8)
    blank = np.zeros((2, 2, 3), dtype=np.uint8)
    for seq in range(1000):
        sampler.offer(seq, blank, np.zeros((1, 1, 1)), blank)
    assert len(sampler.samples) < 8
    picked = [sample[0] for sample in sampler.pick(4)]
    assert len(picked) == 4 and picked[0] == 0 and picked[-1] == 999
    assert all(b - a > 150 for a, b in zip(picked, picked[1:], strict=False))
    few = StripSampler()
    few.offer(3, blank, np.zeros((1, 1, 1)), blank)
    assert [s[0] for s in few.pick(4)] == [3]


def test_strip_rows_are_original_code_reconstruction(tmp_path):
    original = natural_like_image(48, 80, seed=1)
    reconstruction = natural_like_image(48, 80, seed=2)
    samples = [(i, original, sparse_latents(), reconstruction) for i in range(3)]
    assert write_strip(samples, tmp_path / "strip.png", 16)
    strip = cv2.imread(str(tmp_path / "strip.png"))
    assert strip.shape == (3 * 48, 3 * 80, 3)
    assert not write_strip([], tmp_path / "none.png", 16)


def test_receiver_shows_the_code_and_writes_the_strip(tiny_model_path, tmp_path):
    codec = ImageCodec.load(str(tiny_model_path), "cpu")
    receiver = Receiver(codec, StreamStats(), log=lambda text: None)
    shown = []

    class Sink:
        def add(self, rgb, lines):
            shown.append(rgb)

    receiver.sink = Sink()
    receiver.show_code = True
    receiver.strip = StripSampler()
    images = [natural_like_image(48, 64, seed=i) for i in range(6)]
    for seq, image in enumerate(images):
        receiver.handle(frame_parts(codec, image, seq), 100, 0.1 * seq)
        receiver.handle(reference_parts(image, seq), 100, 0.1 * seq)
    assert len(shown) == 6 and shown[0].shape == (48, 128, 3)
    assert [r.zero_share is not None for r in receiver.stats.records] == [True] * 6
    write_outputs(tmp_path, {}, receiver.stats, receiver)
    strip = cv2.imread(str(tmp_path / "strip.png"))
    assert strip.shape == (4 * 48, 3 * 64, 3)  # 4 rows spread over the 6 frames
    assert (tmp_path / "timeline.png").exists() and (tmp_path / "side_by_side.png").exists()
