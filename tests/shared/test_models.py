"""Every zoo architecture trains a step, exports, and codes frames exactly."""

import json

import numpy as np
import pytest
import torch

from shared.codec import ImageCodec
from shared.models.sparse import kl_sparsity
from shared.registry import ARCHITECTURES, build_model
from tests.conftest import natural_like_image
from training.export import export
from training.train import TrainConfig, train

TINY = {
    "factorized": {"hidden": 8, "latent": 8, "lambdas": [0.002, 0.02]},
    "dense": {"block": 16, "latent": 32, "lambdas": [0.002, 0.02]},
    "sparse": {"hidden": 8, "latent": 8, "lambdas": [0.002, 0.02]},
    "realtime": {"fine": 8, "coarse": 8, "latent": 8, "lambdas": [0.002, 0.02]},
    "hyperprior": {"hidden": 8, "latent": 8, "hyper": 8, "lambdas": [0.002, 0.02]},
}


def test_every_architecture_has_a_tiny_config():
    assert set(TINY) == set(ARCHITECTURES)


@pytest.mark.parametrize("architecture", sorted(TINY))
def test_forward_shapes(architecture):
    model = build_model(architecture, TINY[architecture])
    image = torch.rand(2, 3, 64, 96)
    out = model(image, 1)
    assert out["x_hat"].shape == image.shape
    latents = model.analyze(image, 0)
    assert latents.shape == (
        2,
        TINY[architecture]["latent"],
        64 // model.stride,
        96 // model.stride,
    )
    assert model.synthesize(latents, 0).shape == image.shape
    assert ("penalty" in out) == (architecture == "sparse")


@pytest.mark.parametrize("architecture", sorted(TINY))
def test_train_export_and_code(tmp_path, image_folder, architecture):
    config = TrainConfig(
        data=str(image_folder),
        out=str(tmp_path / "run"),
        architecture=architecture,
        model_config=json.dumps(TINY[architecture]),
        steps=2,
        batch=2,
        crop=64,
        checkpoint_every=2,
        validate_every=2,
        log_every=1,
        validation_crop=64,
        threads=1,
    )
    checkpoint = train(config)
    export(checkpoint, tmp_path / "m.safetensors")
    codec = ImageCodec.load(str(tmp_path / "m.safetensors"))
    assert codec.model_file.architecture == architecture
    image = natural_like_image(50, 70)
    coded = codec.compress(image, 1)
    latents = codec.entropy_decode(coded.payload, 1, codec.latent_shape(50, 70))
    expected = codec.analyze_all(image, 1)
    np.testing.assert_array_equal(latents.y, expected.y)
    if architecture == "hyperprior":
        np.testing.assert_array_equal(latents.z, expected.z)
    assert codec.decompress(coded).shape == image.shape


def test_kl_sparsity_is_zero_at_target_and_grows_away_from_it():
    at_target = torch.full((4, 3, 2, 2), 0.05)
    assert kl_sparsity(at_target, 0.05).item() == pytest.approx(0, abs=1e-6)
    dense_code = torch.full((4, 3, 2, 2), 0.5)
    assert kl_sparsity(dense_code, 0.05).item() > 1.0


def test_dense_rejects_impossible_code_sizes():
    with pytest.raises(ValueError):
        build_model("dense", {"block": 4, "latent": 49, "lambdas": [0.01]})
