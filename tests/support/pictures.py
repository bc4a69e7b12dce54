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
