"""Make the sample images that exercise the image rules: `python -m bench.sample_images` (writes articles/media).

Drawn, not photographed, and deterministic: a sky, hills and a subject at a known point (the record's
`image.focus`), JPEG quality 80. Their sizes are what matter: a large square (both sides >= 1200, the
size every rendition can be cut from), a tall portrait whose subject sits off-centre, and a small
picture that no rendition may enlarge.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

MEDIA = Path(__file__).resolve().parent.parent / "articles" / "media"
# name -> (width, height, subject's centre as fractions of width and height)
SAMPLES = {
    "kite-festival.jpg": (1600, 1600, (0.5, 0.35)),
    "temple-steps.jpg": (1200, 1800, (0.4, 0.25)),
    "village-well.jpg": (480, 270, (0.5, 0.5)),
}


def draw(width: int, height: int, focus: tuple[float, float], seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    pen = ImageDraw.Draw(image)
    for y in range(height):  # a sky from deep blue to haze
        t = y / height
        pen.line([(0, y), (width, y)], fill=(int(40 + 150 * t), int(90 + 120 * t), int(200 - 40 * t)))
    for layer in range(3):  # hills
        top = int(height * (0.55 + 0.12 * layer))
        points = [(0, height)] + [(x, top + rng.randint(-height // 20, height // 20))
                                  for x in range(0, width + 80, 80)] + [(width, height)]
        pen.polygon(points, fill=(30 + 30 * layer, 110 - 20 * layer, 40 + 10 * layer))
    cx, cy, r = focus[0] * width, focus[1] * height, min(width, height) // 8
    pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(240, 120, 30), outline=(255, 230, 200), width=r // 10)
    return image.filter(ImageFilter.GaussianBlur(1))


def main(folder: Path = MEDIA) -> None:
    for seed, (name, (width, height, focus)) in enumerate(SAMPLES.items()):
        draw(width, height, focus, seed).save(folder / name, "JPEG", quality=80, optimize=True)
        print(f"{folder / name}: {width}x{height}, {(folder / name).stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else MEDIA)
