"""Cross-configuration exactness: a stream encoded under one set of numerics decodes to the
identical integer latents and identical entropy parameters under any other.

The decoder's path from payload to latents is integer-only (frozen tables; for the
hyperprior, the fixed-point prior network), so the sender's floating-point choices (threads,
memory format, bf16 autocast, CUDA) change which integers it sends, never how a receiver
reads them. Each pair below encodes real video frames (the embedded sample clip) on side A
and decodes them on side B, twice: each frame as a stand-alone image, and all frames as a
video of key and predicted frames in slices; the fast run checks 24 frames per pair and
model, the slow run (``make test-slow``) 1,056 frames.
"""

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import pytest
import torch

from sender.sources import sample_clip_path
from shared.codec import ImageCodec, Latents
from shared.modelfile import load_model_file
from shared.registry import ZOO, resolve_model_path
from shared.video import VideoDecoder, VideoEncoder, VideoSettings


@dataclass(frozen=True)
class Numerics:
    threads: int
    precision: str = "fp32"
    channels_last: bool = True
    device: str = "cpu"


PAIRS = {
    "1 vs 2 threads": (Numerics(1), Numerics(2)),
    "NCHW vs channels_last": (Numerics(1, channels_last=False), Numerics(1)),
    "bf16 autocast vs fp32": (Numerics(1, "bf16"), Numerics(2, "fp32", channels_last=False)),
    "CUDA vs CPU": (Numerics(1, device="cuda"), Numerics(1)),
}


@cache
def video_frames(count: int) -> list[np.ndarray]:
    """``count`` real 176x144 RGB frames: 8 windows of the sample clip, each window's frames
    in time order (window after window), so predicted frames see real motion."""
    per_window = -(-count // 8)
    capture = cv2.VideoCapture(str(sample_clip_path()))
    clip = []
    while len(clip) < per_window:
        ok, bgr = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a short clip: continue from its start
            continue
        clip.append(cv2.resize(bgr, (640, 360), interpolation=cv2.INTER_AREA))
    capture.release()
    frames = []
    for i in range(8):
        top, left = 24 * (i % 4), 60 * i
        for small in clip:
            window = small[top : top + 144, left : left + 176]
            frames.append(cv2.cvtColor(window, cv2.COLOR_BGR2RGB))
    return frames[:count]


@cache
def codec(name: str, numerics: Numerics) -> ImageCodec:
    path, _ = resolve_model_path(name)
    return ImageCodec(
        load_model_file(path), numerics.device, numerics.precision, numerics.channels_last
    )


def check_pair(name: str, pair: str, count: int) -> int:
    side_a, side_b = PAIRS[pair]
    if "cuda" in (side_a.device, side_b.device) and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    encoder, decoder = codec(name, side_a), codec(name, side_b)
    frames = video_frames(count)
    assert len(frames) == count
    mismatches = 0
    # The same frames as a video: key frames every 8, predicted frames between, 3 slices of
    # 4 latent rows, the level changing every 3 frames (predictions are rescaled).
    video_a = VideoEncoder(encoder, VideoSettings(keyframe_interval=8, slice_rows=4))
    video_b = VideoDecoder(decoder)
    for index, rgb in enumerate(frames):
        torch.set_num_threads(side_a.threads)
        coded = video_a.encode(rgb, (index // 3) % encoder.levels)
        torch.set_num_threads(side_b.threads)
        decoded = video_b.decode(coded, index, synthesize=False)
        mismatches += not np.array_equal(decoded.latents, video_a.last_latents)
    for index, rgb in enumerate(frames):
        level = index % encoder.levels
        torch.set_num_threads(side_a.threads)
        sent = encoder.analyze_all(rgb, level)
        payload = encoder.entropy_encode(sent, level)
        indices_a = (
            encoder.model.table_indices(sent.z, level, sent.y.shape[1:]) if encoder.hyper else None
        )
        torch.set_num_threads(side_b.threads)
        got: Latents = decoder.entropy_decode(payload, level, sent.y.shape)
        same = np.array_equal(got.y, sent.y)
        if encoder.hyper:
            indices_b = decoder.model.table_indices(got.z, level, got.y.shape[1:])
            same = same and np.array_equal(got.z, sent.z) and np.array_equal(indices_a, indices_b)
        mismatches += not same
    return mismatches


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("name", sorted(ZOO))
def test_exact_across_numerics(name, pair):
    assert check_pair(name, pair, 24) == 0


@pytest.mark.slow
@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("name", sorted(ZOO))
def test_exact_across_numerics_1056_frames(name, pair):
    assert check_pair(name, pair, 1056) == 0


def test_the_sender_numerics_really_differ():
    """The pairs are not vacuous: bf16 and fp32 encoders send different latents for some
    frames (so the decoder's exactness is not an accident of identical inputs)."""
    name = "fast"
    bf16, fp32 = codec(name, Numerics(1, "bf16")), codec(name, Numerics(1))
    torch.set_num_threads(1)
    differ = sum(
        not np.array_equal(bf16.analyze(rgb, 3), fp32.analyze(rgb, 3)) for rgb in video_frames(8)
    )
    assert differ > 0
