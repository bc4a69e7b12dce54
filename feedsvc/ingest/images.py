"""Local article images (/media/...): the facts probed from the file, bad files refused, renditions made.

Pillow, not pyvips: pyvips is faster on very large images, but it is a binding to libvips, a system
library this host does not have (`pip install pyvips` succeeds, `import pyvips` fails: no
libvips.so.42), so nothing could be measured with it; Pillow's wheels carry their own codecs (JPEG,
WebP and, since Pillow 11.3, AVIF), which keeps every worker and CI runner alike.

A rendition is one of the configured named sizes (IMAGE_RENDITIONS), cropped around the record's
`image.focus` and never enlarged, in each configured format. Its file is

    MEDIA_DIR/renditions/<size>/<key>/<source path>.<ext>

where <key> is the first 12 hex digits of the source's SHA-256, and the focus when there is one
(`3fa2b1c4d5e6-500-300`, per mille): a changed source or focus makes new names, so a rendition's
URL can be cached for ever, and the name alone says how to make the file again when it is missing.

Images inside an article body (feedsvc/ingest/body_images.py) get the configured body widths
(IMAGE_BODY_RENDITIONS) instead: the picture whole, at that width and its own shape, never cropped
(a chart or a portrait cut to 16x9 loses what it shows) and never enlarged.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.security import safe_join

from feedsvc.ingest.urls import uri

# Pillow is imported by the functions that decode or encode: 4-5 MiB RSS (its checks of AVIF and WebP
# support included) that a server worker only needs for a write's images or a missing rendition, not for
# serving the stored sizes (bench row worker-rss-1m).
if TYPE_CHECKING:
    from PIL import Image

RENDITIONS_DIR = "renditions"
# Format name -> (Pillow format, MIME type, file extension, encoder options). WebP method 2 and AVIF
# speed 8: measured on a 1200x675 photo, a quarter (WebP) and a third (AVIF) of the default's time for
# files about a tenth larger; AVIF's faster speeds made files larger than WebP's.
FORMATS = {
    "jpeg": ("JPEG", "image/jpeg", ".jpg", {"quality": 80, "optimize": True, "progressive": True}),
    "webp": ("WEBP", "image/webp", ".webp", {"quality": 80, "method": 2}),
    "avif": ("AVIF", "image/avif", ".avif", {"quality": 60, "speed": 8}),
}
_FORMAT_FEATURE = {"webp": "webp", "avif": "avif"}
_KEY = re.compile(r"^([0-9a-f]{12})(?:-(\d{1,4})-(\d{1,4}))?$")
# EXIF orientations 5-8 turn the picture a quarter: the width shown is the height stored.
_QUARTER_TURNS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


class ImageRefused(ValueError):
    """A local image that cannot be used: unreadable, truncated, or too many pixels to decode safely."""


@dataclass(frozen=True)
class ImageSettings:
    """What ingest needs to know about local images; picklable, for the import's worker processes."""
    site_url: str
    media_dir: str
    sizes: tuple[tuple[str, int, int], ...]   # (name, width, height)
    formats: tuple[str, ...]
    body_widths: tuple[tuple[str, int], ...] = ()   # (name, width) of body images' renditions

    @property
    def media_url(self) -> str:
        return f"{self.site_url}/media/"

    # Part of the key of every cached lookup below, several per record an import writes: hashing the
    # nested tuples again each time cost 2 µs a lookup.
    @cached_property
    def _hash(self) -> int:
        return hash((self.site_url, self.media_dir, self.sizes, self.formats, self.body_widths))

    def __hash__(self) -> int:
        return self._hash

    def __getstate__(self) -> dict:
        # Not the kept hash: a str's hash differs from process to process (PYTHONHASHSEED).
        return {name: value for name, value in self.__dict__.items() if name != "_hash"}


def parse_sizes(entries) -> tuple[tuple[str, int, int], ...]:
    """IMAGE_RENDITIONS entries such as "lead:1200x675" -> (("lead", 1200, 675), ...)."""
    sizes = []
    for entry in entries:
        found = re.fullmatch(r"\s*([a-z][a-z0-9_]*)\s*:\s*(\d{1,5})x(\d{1,5})\s*", entry)
        if not found or not int(found.group(2)) or not int(found.group(3)):
            raise ValueError(f"{entry!r} is not a rendition such as lead:1200x675")
        sizes.append((found.group(1), int(found.group(2)), int(found.group(3))))
    return tuple(sizes)


def parse_widths(entries) -> tuple[tuple[str, int], ...]:
    """IMAGE_BODY_RENDITIONS entries such as "body:1200" -> (("body", 1200), ...)."""
    widths = []
    for entry in entries:
        found = re.fullmatch(r"\s*([a-z][a-z0-9_]*)\s*:\s*(\d{1,5})\s*", entry)
        if not found or not int(found.group(2)):
            raise ValueError(f"{entry!r} is not a body rendition width such as body:1200")
        widths.append((found.group(1), int(found.group(2))))
    return tuple(widths)


def known_formats(names) -> tuple[str, ...]:
    """The configured format names, checked (ValueError names the unknown ones)."""
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown image formats {unknown}; known: {sorted(FORMATS)}")
    return tuple(names)


def usable_formats(names) -> tuple[str, ...]:
    """The configured formats this Pillow can write (AVIF needs a Pillow built with libavif)."""
    return _usable(known_formats(names))


@lru_cache(maxsize=8)   # asked by every write and missing rendition; features.check loads a plugin
def _usable(names: tuple[str, ...]) -> tuple[str, ...]:
    from PIL import features

    return tuple(n for n in names if n not in _FORMAT_FEATURE or features.check(_FORMAT_FEATURE[n]))


def settings_from(config) -> ImageSettings:
    return ImageSettings(config["SITE_URL"], config["MEDIA_DIR"], config["IMAGE_SIZES"],
                         usable_formats(config["IMAGE_FORMATS"]),
                         config.get("IMAGE_BODY_WIDTHS", ()))


def local_file(url: str, settings: ImageSettings) -> Path | None:
    """The file under MEDIA_DIR that a /media/ URL of this site names; None for a remote image."""
    if not url.startswith(settings.media_url):
        return None
    relative = url[len(settings.media_url):].split("?", 1)[0].split("#", 1)[0]
    # safe_join, as send_from_directory serves /media/: None for a path that leaves the folder (../).
    path = safe_join(settings.media_dir, relative)
    if path is None or relative.startswith(RENDITIONS_DIR + "/"):
        return None
    return Path(path)


# Many records name the same few files, and finding a file from a URL (paths checked, Path objects made)
# costs more than the cached probe that follows: an import of records with images spent 7% of its time here.
@lru_cache(maxsize=4096)
def local_media(url: str, settings: ImageSettings) -> tuple[Path, str] | None:
    """local_file, and the file's path under MEDIA_DIR as messages name it; None for a remote image."""
    path = local_file(url, settings)
    return None if path is None else (path, path.relative_to(settings.media_dir).as_posix())


# ---- which version of a file is there ------------------------------------------------------------

# The os.stat of each file the records of a batch name, asked once in the batch: a stat costs 8-10 µs
# here, more than the cached probe it keys, and an import of records with images asked 2.5 a record
# (a third of what their images cost it). A file replaced while a batch is checked is seen as replaced
# from the next batch on, as if it had been replaced a moment later.
_STATS: ContextVar[dict[Path, os.stat_result | OSError] | None] = ContextVar("image_file_stats", default=None)


class _OneStatPerFile:
    # A class, not @contextmanager: entered once a record, where the generator's machinery cost 3 µs.
    def __enter__(self) -> None:
        self._token = _STATS.set({}) if _STATS.get() is None else None

    def __exit__(self, *exc_info) -> None:
        if self._token is not None:
            _STATS.reset(self._token)


def one_stat_per_file() -> _OneStatPerFile:
    """Inside this block each local file is looked at (os.stat) once; a block inside another shares its looks."""
    return _OneStatPerFile()


def _stat(path: Path) -> os.stat_result:
    seen = _STATS.get()
    if seen is None:
        return os.stat(path)
    found = seen.get(path)
    if found is None:
        try:
            found = os.stat(path)
        except OSError as exc:
            found = exc
        seen[path] = found
    if isinstance(found, OSError):
        raise OSError(found.errno, found.strerror, found.filename)   # a new one: a raised one keeps its traceback
    return found


def _is_file(path: Path) -> bool:
    """Path.is_file, through _stat."""
    try:
        return stat.S_ISREG(_stat(path).st_mode)
    except (OSError, ValueError):
        return False


# ---- probing --------------------------------------------------------------------------------------

def _open(path: Path, *, decode: bool = True) -> Image.Image:
    """The image, decoded whole unless `decode` is false (then only its header is read): a truncated
    or corrupt file fails here, not in a reader's browser."""
    from PIL import Image

    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; past it, it raises. Both refuse here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
            if decode:
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(f"has too many pixels to decode safely ({exc})") from None
        except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for unreadable data
            raise ImageRefused(f"is not a readable image ({exc})") from None
    return image


def probe(path: Path) -> dict:
    """width and height as shown (EXIF rotation applied), MIME type, byte length and SHA-256 of a file,
    from its header: make_renditions decodes it whole."""
    from PIL import Image

    image = _open(path, decode=False)
    data = path.read_bytes()
    width, height = image.size
    if image.getexif().get(_EXIF_ORIENTATION) in _QUARTER_TURNS:
        width, height = height, width
    return {"width": width, "height": height, "type": Image.MIME.get(image.format or "", "application/octet-stream"),
            "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# ---- renditions -----------------------------------------------------------------------------------

def rendition_key(sha256: str, focus: dict | None) -> str:
    if not focus:
        return sha256[:12]
    return f"{sha256[:12]}-{round(focus['x'] * 1000)}-{round(focus['y'] * 1000)}"


def _focus_of(key: str) -> dict | None:
    found = _KEY.match(key)
    return {"x": int(found.group(2)) / 1000, "y": int(found.group(3)) / 1000} if found and found.group(2) else None


def crop_box(width: int, height: int, target: tuple[int, int], focus: dict | None) -> tuple[float, float, float, float]:
    """The largest box of the target's shape, centred on the focus as far as the picture allows.

    Not ImageOps.fit's `centering`, which places the box by the fraction of the margin left over:
    a face at a third of the height would be cut off in a wide crop of a tall picture.
    """
    ratio = target[0] / target[1]
    box_w, box_h = min(width, height * ratio), min(height, width / ratio)
    fx, fy = (focus["x"], focus["y"]) if focus else (0.5, 0.5)
    left = min(max(fx * width - box_w / 2, 0), width - box_w)
    top = min(max(fy * height - box_h / 2, 0), height - box_h)
    return left, top, left + box_w, top + box_h


def rendition_size(width: int, height: int, target: tuple[int, int]) -> tuple[int, int]:
    """The target size, or the largest of its shape the picture fills without being enlarged."""
    left, top, right, bottom = crop_box(width, height, target, None)
    scale = min(1.0, (right - left) / target[0])
    return max(1, round(target[0] * scale)), max(1, round(target[1] * scale))


def _displayed(image: Image.Image) -> Image.Image:
    """The first frame, turned as its EXIF says, in a mode every encoder takes (CMYK and palettes to RGB)."""
    from PIL import ImageOps

    image.seek(0)
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _encode(picture: Image.Image, fmt: str, target: Path) -> None:
    from PIL import Image

    pillow_format, _, _, options = FORMATS[fmt]
    if fmt == "jpeg" and picture.mode == "RGBA":  # JPEG has no alpha: transparent parts go white
        flat = Image.new("RGB", picture.size, "white")
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    picture.save(temporary, pillow_format, **options)
    os.replace(temporary, target)  # readers see no file or the whole file, never part of one


def _locked(settings: ImageSettings, target: Path):
    """An exclusive lock for making `target`, shared by every thread and process on this host
    (flock: released by the kernel if the holder dies). Lock files stay: removing one would let a
    waiter and a newcomer hold locks on two different files for the same target."""
    locks = Path(settings.media_dir) / RENDITIONS_DIR / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    handle = open(locks / hashlib.sha256(str(target).encode()).hexdigest()[:24], "w")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def rendition_path(settings: ImageSettings, name: str, key: str, relative: str, fmt: str) -> Path:
    return Path(settings.media_dir) / RENDITIONS_DIR / name / key / (relative + FORMATS[fmt][2])


def _make(settings: ImageSettings, picture_of, target: Path, size: tuple[int, int], focus: dict | None) -> int:
    """Write one rendition unless it exists; made once however many threads or processes ask at once."""
    try:
        # Made already, as on every import after the first: one look, not exists() and then stat().
        return os.stat(target).st_size
    except FileNotFoundError:
        with _locked(settings, target):
            if not target.exists():  # another worker made it while this one waited for the lock
                from PIL import Image

                picture = picture_of()
                width, height = picture.size
                box = crop_box(width, height, size, focus)
                out = rendition_size(width, height, size)
                _encode(picture.resize(out, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0),
                        _format_of(target), target)
    return target.stat().st_size


def _format_of(target: Path) -> str:
    return next(fmt for fmt, spec in FORMATS.items() if target.name.endswith(spec[2]))


def make_renditions(source: Path, facts: dict, focus: dict | None, settings: ImageSettings) -> dict:
    """Every configured rendition of a probed local image, made where missing; their sizes and byte lengths
    as the stored image keeps them: {name: {"width", "height", "bytes": {format: length}}}."""
    return _make_all(source, facts, focus, settings, [(name, (width, height)) for name, width, height in settings.sizes])


def body_targets(width: int, height: int, settings: ImageSettings) -> list[tuple[str, tuple[int, int]]]:
    """(name, size) of the body renditions of a picture shown width x height: each configured width, at
    most the picture's own, at the picture's shape; a width that comes out as an earlier one's is left out."""
    seen, targets = set(), []
    for name, wanted in settings.body_widths:
        out = min(wanted, width)
        if out not in seen:
            seen.add(out)
            targets.append((name, (out, max(1, round(out * height / width)))))
    return targets


def make_body_renditions(source: Path, facts: dict, settings: ImageSettings) -> dict:
    """make_renditions for an image inside a body: the configured body widths, uncropped."""
    return _make_all(source, facts, None, settings, body_targets(facts["width"], facts["height"], settings))


def _make_all(source: Path, facts: dict, focus: dict | None, settings: ImageSettings,
              targets: list[tuple[str, tuple[int, int]]]) -> dict:
    key = rendition_key(facts["sha256"], focus)
    relative = source.relative_to(settings.media_dir).as_posix()
    decoded: list[Image.Image] = []

    def picture() -> Image.Image:  # decoded once, and only when some rendition is missing
        if not decoded:
            decoded.append(_displayed(_open(source)))
        return decoded[0]

    made = {}
    for name, size in targets:
        out_w, out_h = rendition_size(facts["width"], facts["height"], size)
        made[name] = {"width": out_w, "height": out_h, "bytes": {
            fmt: _make(settings, picture, rendition_path(settings, name, key, relative, fmt), size, focus)
            for fmt in settings.formats}}
    return made


# An import reads the same file for many records (and the samples, and the benchmark's corpus,
# reuse a few): hashing it and checking its renditions once per size and mtime keeps an import of
# records whose images are processed at the rate of one without images.
@lru_cache(maxsize=4096)
def _processed(path: Path, size: int, mtime_ns: int, focus: tuple[float, float] | None,
               settings: ImageSettings, body: bool) -> tuple[dict, dict] | ImageRefused:
    """The work `processed` does once per file version; a refusal is kept too (returned, as lru_cache
    keeps no exception), so a bad file many records name is read once."""
    try:
        facts = probe(path)
        if body:
            made = make_body_renditions(path, facts, settings)
        else:
            made = make_renditions(path, facts, {"x": focus[0], "y": focus[1]} if focus else None, settings)
        if not made:  # no renditions configured: nothing decoded the file yet
            _open(path)
    except ImageRefused as refused:
        return refused
    return facts, made


def processed(path: Path, focus: dict | None, settings: ImageSettings, *, body: bool = False) -> tuple[dict, dict]:
    """(probed facts, renditions) of a local file, made once per file version however many records
    name it; `body`: an image inside an article body (body widths, never cropped). Raises ImageRefused,
    or OSError when there is no such file."""
    version = _stat(path)
    done = _processed(path, version.st_size, version.st_mtime_ns, (focus["x"], focus["y"]) if focus else None,
                      settings, body)
    if isinstance(done, ImageRefused):
        raise ImageRefused(str(done))
    return done


def checked_image(image: dict, settings: ImageSettings) -> tuple[dict | None, list[tuple[str, str]]]:
    """A record's image as stored, with (field, reason) warnings: a local one with its probed size, type,
    length and renditions (a declared size that disagrees is corrected), or None when its file is refused;
    a remote one as the record says."""
    local = local_media(image["url"], settings)
    if local is None:
        return image, []
    path, relative = local
    if not _is_file(path):  # the CMS may upload it later: nothing to probe, nothing to refuse
        return image, [("image.url", f"{relative} is not in MEDIA_DIR; kept as the record declares it")]
    try:
        facts, made = processed(path, image.get("focus"), settings)
    except ImageRefused as exc:
        return None, [("image.url", f"{relative} {exc}; refused, and the article is stored without an image")]
    notes = [(f"image.{side}", f"declared {image[side]} but {relative} is {facts[side]} px {word}; corrected")
             for side, word in (("width", "wide"), ("height", "high")) if image.get(side, facts[side]) != facts[side]]
    stored = dict(image, width=facts["width"], height=facts["height"], type=facts["type"], length=facts["length"])
    if made:
        stored.update(key=rendition_key(facts["sha256"], image.get("focus")), renditions=made)
    return stored, notes


def ensure_rendition(settings: ImageSettings, name: str, key: str, relative: str) -> Path | None:
    """The file of a requested rendition (/media/renditions/<name>/<key>/<relative>), made if missing;
    None unless the name is a configured size, the format a configured one, and the key the current
    source's: only configured sizes of real sources exist, whatever a URL asks for."""
    sizes = {n: (w, h) for n, w, h in settings.sizes}
    fmt = next((f for f in settings.formats if relative.endswith(FORMATS[f][2])), None)
    if (name not in sizes and name not in dict(settings.body_widths)) or fmt is None or not _KEY.match(key):
        return None
    source = local_file(settings.media_url + relative[: -len(FORMATS[fmt][2])], settings)
    if source is None or not source.is_file():
        return None
    target = rendition_path(settings, name, key, relative[: -len(FORMATS[fmt][2])], fmt)
    if target.exists():
        return target
    try:
        facts = probe(source)
        if not facts["sha256"].startswith(key[:12]):
            return None  # an old key: the source has changed since, and its old renditions are gone
        size = sizes.get(name) or dict(body_targets(facts["width"], facts["height"], settings)).get(name)
        if size is None:  # a body width this picture makes the same as a smaller name's: never made
            return None
        _make(settings, lambda: _displayed(_open(source)), target, size, _focus_of(key))
    except ImageRefused:
        return None
    return target


# ---- what renderers read from a stored image -----------------------------------------------------

def rendition(image: Mapping | None, name: str, fmt: str = "jpeg") -> dict | None:
    """{"url", "width", "height", "type", "length"} of one rendition of a stored image, if it has one."""
    made = (image or {}).get("renditions", {}).get(name)
    if image is None or not made or fmt not in made["bytes"]:
        return None
    media = image["url"][: image["url"].index("/media/") + len("/media/")]
    relative = image["url"][len(media):]
    # As a URI (non-ASCII file names percent-encoded): srcset candidates are split at spaces.
    url = uri(f"{media}{RENDITIONS_DIR}/{name}/{image['key']}/{relative}{FORMATS[fmt][2]}")
    return {"url": url, "width": made["width"], "height": made["height"], "type": FORMATS[fmt][1],
            "length": made["bytes"][fmt]}


def rendition_formats(image: Mapping | None) -> list[str]:
    """The formats an image's renditions come in, best compression first (AVIF, WebP, then JPEG)."""
    made = next(iter((image or {}).get("renditions", {}).values()), None)
    order = ["avif", "webp", "jpeg"]
    return [fmt for fmt in order if made and fmt in made["bytes"]]


# Renditions of one shape (16x9) that a page may choose between by its width, largest first.
RESPONSIVE = ("lead", "thumbnail")
# The shapes of an article's structured-data images Google asks for (16x9, 4x3, 1x1), 1200 px wide:
# https://developers.google.com/search/docs/appearance/structured-data/article (image property).
STRUCTURED_DATA = ("lead", "lead_4x3", "lead_1x1")


def srcset(image: Mapping | None, fmt: str, names=RESPONSIVE) -> str:
    """A srcset ("url 1200w, url 400w") of an image's renditions in one format; "" when it has none."""
    found = [r for r in (rendition(image, name, fmt) for name in names) if r]
    return ", ".join(f"{r['url']} {r['width']}w" for r in found)
