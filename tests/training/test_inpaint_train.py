"""Inpainting training runs, resumes, exports a model file the receiver loads; masks and
the synthesised previous frame look like what they stand for."""

import json

import numpy as np
import pytest
import torch

from shared.models.inpaint import Inpainter
from tests.conftest import natural_like_image, write_images
from training.__main__ import main
from training.inpaint import (
    InpaintSampler,
    InpaintTrainConfig,
    export_inpaint,
    random_mask,
    synthesize_previous,
    train_inpaint,
)


@pytest.fixture
def train_folder(tmp_path):
    return write_images(tmp_path / "train", 8, 80, 96)


def test_masks_and_previous_frame():
    rng = np.random.default_rng(0)
    for kind in ("band", "strokes", "rects", "text"):
        mask = random_mask(rng, 64, kind)
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0.0, 1.0}
        assert 0 < mask.mean() < 1, kind
    band = random_mask(rng, 64, "band")
    assert all(row.min() == row.max() for row in band)  # whole rows, like a lost slice
    patch = natural_like_image(96, 96)
    previous = synthesize_previous(rng, patch, 64)
    assert previous.shape == (64, 64, 3) and previous.dtype == np.float32
    current = patch[16:80, 16:80] / 255
    assert 0 < np.abs(previous - current).mean() < 0.2  # similar, not equal


def test_masks_option_draws_only_the_kinds_named(tmp_path, monkeypatch):
    import training.inpaint as inpaint

    drawn = []
    real = inpaint.random_mask
    monkeypatch.setattr(
        inpaint, "random_mask", lambda rng, size, kind: drawn.append(kind) or real(rng, size, kind)
    )
    images = [natural_like_image(96, 96)]
    sampler = InpaintSampler(images, 64, 1.0, 0, mask_kinds=("strokes", "text"))
    for _ in range(40):
        sampler.sample()
    assert set(drawn) == {"strokes", "text"}
    with pytest.raises(ValueError, match="--masks: unknown kind"):
        InpaintTrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), masks="strokes,blobs")
    assert InpaintTrainConfig(data=str(tmp_path), out=str(tmp_path / "o")).mask_kinds() == ()


def test_train_resume_export_and_load(tmp_path, train_folder):
    out = tmp_path / "run"
    config = InpaintTrainConfig(
        data=str(train_folder),
        out=str(out),
        steps=2,
        batch=2,
        crop=32,
        checkpoint_every=1,
        validate_every=2,
        log_every=1,
        validation_samples=4,
        threads=1,
    )
    checkpoint = train_inpaint(config)
    assert (
        main(
            [
                "inpaint",
                "--data",
                str(train_folder),
                "--out",
                str(out),
                "--steps",
                "3",
                "--batch",
                "2",
                "--crop",
                "32",
                "--validation-samples",
                "4",
                "--log-every",
                "1",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]
    validation = [r for r in rows if r["kind"] == "validation"][-1]
    assert set(validation["band_prev"]) == {"net", "copy", "gray"}
    assert set(validation["free_noprev"]) == {"net", "smooth", "gray"}
    model = tmp_path / "inpaint.safetensors"
    sha = export_inpaint(checkpoint, model)
    inpainter = Inpainter.load(str(model))
    assert inpainter.content_sha256 == sha
    image, mask = natural_like_image(40, 56), np.zeros((40, 56), bool)
    mask[10:20] = True
    assert np.array_equal(inpainter(image, mask)[~mask], image[~mask])


def test_codec_reconstructions_and_init_from(tmp_path, train_folder, tiny_model_path):
    from shared.codec import ImageCodec
    from training.data import list_images
    from training.inpaint import InpaintSampler, load_images

    codec = ImageCodec.load(str(tiny_model_path)).model
    images = load_images(list_images(train_folder), 32)
    sampler = InpaintSampler(images, 32, 0.5, 0, (1.5, 0.35, 0.03), codec, codec_share=1.0)
    inputs, targets, masks = sampler.batch(4)
    assert inputs.shape == (4, 8, 32, 32) and targets.shape == (4, 3, 32, 32)
    known = 1 - masks
    assert not torch.allclose(inputs[:, :3] * known, targets * known)  # the codec's picture
    first = tmp_path / "first"
    base = dict(data=str(train_folder), batch=2, crop=32, validation_samples=4, threads=1)
    checkpoint = train_inpaint(InpaintTrainConfig(out=str(first), steps=1, **base))
    second = InpaintTrainConfig(
        out=str(tmp_path / "second"),
        steps=1,
        codec=str(tiny_model_path),
        init_from=str(checkpoint),
        **base,
    )
    train_inpaint(second)
    rows = (tmp_path / "second" / "log.jsonl").read_text().splitlines()
    assert json.loads(rows[-1])["kind"] == "validation"
