"""Image files made in a test with Pillow, the media folder they go in (a fixture: loaded as a pytest plugin by
tests/conftest.py), and output images decoded back from it."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def media(tmp_path) -> Path:
    """An empty MEDIA_DIR."""
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


def photo(path: Path, size=(1600, 1600), mode="RGB", fmt="JPEG", color=(40, 120, 200), **save) -> Path:
    Image.new(mode, size, color).save(path, fmt, **save)
    return path


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def file_of(media: Path, url: str) -> Path:
    """The file under `media` that a /media/ URL (absolute or a site path) names."""
    return media / url.split("/media/", 1)[1]


# Files ingest must refuse, by name, with the reason its message gives.
BAD_IMAGES = [("corrupt.jpg", "not a readable image"), ("truncated.jpg", "not a readable image"),
              ("bomb.png", "too many pixels")]


def bad_image(media: Path, name: str, monkeypatch) -> Path:
    """One of BAD_IMAGES written into `media`: bytes that are no JPEG, half a JPEG, or a PNG over the
    pixel limit (Pillow's MAX_IMAGE_PIXELS lowered for the test, so 4 megapixels count as a bomb)."""
    path = media / name
    if name == "corrupt.jpg":
        path.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    elif name == "truncated.jpg":
        whole = photo(media / "whole.jpg", (1200, 800)).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    else:
        photo(path, (2000, 2000), "L", "PNG", 0)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000 * 1000)
    return path
