"""Frame sources: a bad file inside an image folder is skipped, not the end of the stream."""

import pytest

from sender.sources import SourceError, open_source
from tests.conftest import write_images


def test_an_undecodable_image_in_a_folder_is_skipped_once_with_a_warning(tmp_path, capsys):
    folder = write_images(tmp_path / "images", 3, 32, 48, "frame_{i:03d}.png")
    (folder / "frame_001.png").write_bytes(b"not a png")
    frames = list(open_source(str(folder)))
    assert len(frames) == 2 and frames[0].shape == (32, 48, 3)
    looped = iter(open_source(str(folder), loop=True))
    assert len([next(looped) for _ in range(6)]) == 6
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 2 and all("skipped" in w and "frame_001" in w for w in warnings)


def test_a_folder_whose_first_image_is_bad_is_a_clear_error(tmp_path):
    folder = write_images(tmp_path / "images", 2, 32, 48, "frame_{i:03d}.png")
    (folder / "frame_000.png").write_bytes(b"")
    with pytest.raises(SourceError, match="cannot decode image"):
        open_source(str(folder))
