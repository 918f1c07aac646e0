"""``python -m receiver.inpaint``: fills the mask, keeps the rest, one-line errors."""

import cv2
import numpy as np
import pytest

from receiver.inpaint import main
from shared.modelfile import save_weights_file
from shared.models.inpaint import InpaintNet
from tests.conftest import natural_like_image


@pytest.fixture
def files(tmp_path):
    net = InpaintNet()
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    save_weights_file(tmp_path / "m.safetensors", "inpaint", net.config.to_dict(), weights, {})
    image = natural_like_image(60, 90)
    cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    mask = np.zeros((60, 90), np.uint8)
    cv2.putText(mask, "Hi", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 255, 3)
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    cv2.imwrite(str(tmp_path / "small.png"), mask[:30])
    return tmp_path, image, mask > 127


def test_fills_the_mask_only(files, capsys):
    folder, image, hole = files
    args = ["--image", str(folder / "in.png"), "--mask", str(folder / "mask.png")]
    args += ["--out", str(folder / "out.png"), "--model", str(folder / "m.safetensors")]
    assert main(args) == 0
    assert "pixels filled" in capsys.readouterr().out
    out = cv2.cvtColor(cv2.imread(str(folder / "out.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.array_equal(out[hole], image[hole])  # smooth fill at least


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--image": "missing.png"}, "does not exist"),
        ({"--mask": "small.png"}, "mask is 90x30"),
        ({"--out": "out.xyz"}, "cannot write"),
        ({"--out": "nowhere/out.png"}, "does not exist"),
        ({"--model": "none.safetensors"}, "cannot read model file"),
    ],
)
def test_errors_are_one_line(files, capsys, change, message):
    folder, _, _ = files
    values = {
        "--image": "in.png",
        "--mask": "mask.png",
        "--out": "out.png",
        "--model": "m.safetensors",
    } | change
    args = [item for key, name in values.items() for item in (key, str(folder / name))]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_huge_grow_fills_the_whole_image_without_a_huge_kernel(files, capsys):
    folder, _, _ = files
    args = ["--image", str(folder / "in.png"), "--mask", str(folder / "mask.png")]
    args += ["--out", str(folder / "out.png"), "--model", str(folder / "m.safetensors")]
    assert main([*args, "--grow", "100000"]) == 0  # the kernel would need 37 GiB unclamped
    assert f"{60 * 90} pixels filled" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--grow", "-1"])


def test_an_image_alone_gets_the_image_network_and_with_a_previous_frame_the_video_one(
    files, monkeypatch
):
    from receiver import inpaint

    loaded = []
    real_load = inpaint.Inpainter.load
    monkeypatch.setattr(
        inpaint.Inpainter, "load", staticmethod(lambda name: loaded.append(name) or real_load(name))
    )
    folder, _, _ = files
    args = ["--image", str(folder / "in.png"), "--mask", str(folder / "mask.png")]
    args += ["--out", str(folder / "out.png")]
    assert main(args) == 0
    assert main([*args, "--previous", str(folder / "in.png")]) == 0
    assert loaded == ["inpaint-image", "inpaint"]
