import json

import pytest

from shared.codec import ImageCodec
from shared.modelfile import FORMAT_VERSION, ModelFileError, load_model_file
from tests.conftest import make_model_file


def test_roundtrip_and_hash_is_stable(tmp_path, tiny_model_path):
    model = load_model_file(tiny_model_path)
    assert model.architecture == "factorized"
    assert len(model.content_sha256) == 64
    again = make_model_file(tmp_path / "again.safetensors")
    assert load_model_file(again).content_sha256 == model.content_sha256


def test_different_weights_give_a_different_hash(tmp_path, tiny_model_path):
    other = make_model_file(tmp_path / "other.safetensors", seed=1)
    assert load_model_file(other).short_hash != load_model_file(tiny_model_path).short_hash


def test_tampered_tensor_bytes_are_refused(tmp_path, tiny_model_path):
    raw = bytearray(tiny_model_path.read_bytes())
    raw[-10] ^= 0x40  # inside the last tensor's data
    bad = tmp_path / "tampered.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="content hash"):
        load_model_file(bad)


def _rewrite_metadata(src, dst, change):
    raw = src.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["latentcast"])
    change(meta)
    header["__metadata__"]["latentcast"] = json.dumps(meta)
    encoded = json.dumps(header).encode()
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    dst.write_bytes(len(encoded).to_bytes(8, "little") + encoded + raw[8 + size :])


def test_tampered_config_is_refused(tmp_path, tiny_model_path):
    bad = tmp_path / "config.safetensors"
    _rewrite_metadata(tiny_model_path, bad, lambda m: m["config"].update(hidden=9))
    with pytest.raises(ModelFileError, match="content hash"):
        load_model_file(bad)


def test_other_format_version_is_refused(tmp_path, tiny_model_path):
    bad = tmp_path / "version.safetensors"
    _rewrite_metadata(tiny_model_path, bad, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="format version"):
        load_model_file(bad)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff" * 64])
def test_non_model_files_are_refused(tmp_path, content):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError):
        load_model_file(bad)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        ImageCodec.load(str(tmp_path / "nope.safetensors"))


def test_pickle_file_is_not_executed(tmp_path):
    import pickle

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelFileError):
        load_model_file(bad)
