"""Images: rendition generation per core, the import of records whose images are already processed, and
a rendition served by nginx from the mirror against nginx's static rate for the same bytes.

Renditions are made by feedsvc.ingest.images as ingest makes them (every configured size and format,
AVIF included where Pillow writes it), in this process: one core. The sample images are the shipped
ones (articles/media), copied to a folder of the run's own so nothing is reused from an earlier run.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from feedsvc import create_app, store
from feedsvc.config import DEFAULTS
from feedsvc.ingest import images, importer
from feedsvc.web import db

from . import load, wrk
from .scale import IMPORT_ROWS
from .servers import Nginx
from .stats import Row, Sample, Table

# Shipped 800x450 photos the import-images corpus puts inside every BODY_IMAGE_EVERY-th record's body (the
# synthetic corpus has none): the import probes each file once, however many bodies show it.
BODY_IMAGES = ("crowd.jpg", "rain-chart.jpg", "clinic.jpg")
BODY_IMAGE_EVERY = 2
# A large square, a tall portrait and a 16:9 lead: what the renditions are cut from most of the time.
SOURCES = ("kite-festival.jpg", "temple-steps.jpg", "cricket.jpg")
RENDITION_ROWS = {
    "renditions": "every configured rendition (sizes × formats) of one image, made in one process (images/s per core)",
}
IMPORT_IMAGE_ROWS = {
    "import-images": ("BENCH_IMPORT_ROWS records whose local images (the lead, and in every other body one more) are "
                      "already processed, vs import-rate (target ≥ 2,000/s)"),
}
SERVE_ROWS = {
    "serve-rendition-nginx": ("nginx serving a rendition from the mirror's /media/renditions/, vs the same bytes "
                              "as a static original (target ≥ 0.9×)"),
}


def settings(media_dir: Path) -> images.ImageSettings:
    return images.ImageSettings("http://news.example", str(media_dir), images.parse_sizes(DEFAULTS["IMAGE_RENDITIONS"]),
                                images.usable_formats(DEFAULTS["IMAGE_FORMATS"]))


def renditions(table: Table, repeats: int) -> None:
    load.OUT.mkdir(parents=True, exist_ok=True)
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(dir=load.OUT) as folder:
            chosen = settings(Path(folder))
            sources = [Path(shutil.copy(load.ROOT / "articles" / "media" / name, folder)) for name in SOURCES]
            started = time.perf_counter()
            for source in sources:
                images.make_renditions(source, images.probe(source), None, chosen)
            rates.append(len(sources) / (time.perf_counter() - started))
    chosen = settings(load.ROOT)
    table.add(Row("renditions", "image renditions (one process: one core)",
                  f"{len(chosen.sizes)} sizes × {', '.join(chosen.formats)} per image, from "
                  f"{', '.join(SOURCES)}", Sample(rates, "images/s", higher_is_better=True),
                  note=f"{len(chosen.sizes) * len(chosen.formats)} files per image"))


def _import_once(corpus: Path, media_dir: Path) -> tuple[float, int, int]:
    """(records per second, records stored with their renditions, records stored with probed body images)
    of one import into a fresh database."""
    with tempfile.TemporaryDirectory(dir=load.OUT) as folder:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/import.db", "SITE_URL": "http://news.example",
                          "MEDIA_DIR": str(media_dir)})
        db.engine(app).dispose()
        engine = importer.import_engine(app.config["DATABASE_URL"])
        store.migrate(engine)
        started = time.perf_counter()
        report = importer.import_files(engine, [corpus], site_url=app.config["SITE_URL"], site_name=app.config["SITE_NAME"],
                                       images=images.settings_from(app.config))   # as `flask import-articles` does
        rate = report.stored / (time.perf_counter() - started)
        with engine.connect() as conn:
            stored = [row.article for row in conn.execute(store.articles.select())]
        engine.dispose()
    return rate, sum('"renditions"' in a for a in stored), sum('"body_images"' in a for a in stored)


def _with_body_images(corpus: Path, folder: Path) -> Path:
    """The corpus with a figure of one of BODY_IMAGES in every BODY_IMAGE_EVERY-th record's body."""
    out = folder / corpus.name.replace(".jsonl", "-body-images.jsonl")
    with corpus.open(encoding="utf-8") as records, out.open("w", encoding="utf-8") as written:
        for number, line in enumerate(records):
            record = json.loads(line)
            if number % BODY_IMAGE_EVERY == 0:
                name = BODY_IMAGES[number // BODY_IMAGE_EVERY % len(BODY_IMAGES)]
                record["body_html"] += (f'<figure><img src="/media/{name}" width="800" height="450" alt="चित्र">'
                                        "<figcaption>फ़ाइल फ़ोटो</figcaption></figure>")
            written.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out


def import_with_images(table: Table, baseline: Sample, repeats: int = 3) -> None:
    """The import-rate corpus, whose records point at the shipped images (half of them in the body too),
    into a media folder where an earlier import already made every rendition: what a re-import or a
    steady feed of CMS records costs."""
    with tempfile.TemporaryDirectory(dir=load.OUT) as folder:
        corpus = _with_body_images(load.corpus(IMPORT_ROWS), Path(folder))
        media = Path(folder) / "media"
        shutil.copytree(load.ROOT / "articles" / "media", media, ignore=shutil.ignore_patterns(images.RENDITIONS_DIR))
        _import_once(corpus, media)   # makes the renditions
        made = sum(1 for _ in (media / images.RENDITIONS_DIR).rglob("*.*"))
        results = [_import_once(corpus, media) for _ in range(repeats)]
    sample = Sample([rate for rate, _, _ in results], "records/s", higher_is_better=True)
    _, leads, bodies = results[0]
    row = table.compare("import-images", "import into SQLite", "records with processed local images (renditions on disk)",
                        sample, baseline, "import-rate",
                        note=f"{leads:,} stored with renditions, {bodies:,} with body images; {made} files")
    row.target, row.met = "≥ 2,000/s", sample.median >= 2000


def serve_rendition(table: Table, mirror: Path, workdir: Path, repeats: int) -> None:
    rendition = next(iter(sorted((mirror / "media" / images.RENDITIONS_DIR / "lead").rglob("*.jpg"))), None)
    if rendition is None:
        raise RuntimeError(f"no lead rendition in the mirror {mirror}: export it with the sample images first")
    path = "/" + rendition.relative_to(mirror).as_posix()
    plain = mirror / "media" / "bench-static-copy.jpg"   # the same bytes, an original's location (no renditions rules)
    shutil.copyfile(rendition, plain)
    try:
        with ExitStack() as stack:
            nginx = stack.enter_context(Nginx(mirror, workdir / "nginx-media"))
            urls = {"rendition": nginx.url(path), "static": nginx.url("/media/bench-static-copy.jpg")}
            for url in urls.values():
                wrk.run(url, seconds=1)
            rates: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(repeats):
                for name, url in urls.items():
                    rates[name].append(wrk.run(url))
    finally:
        plain.unlink(missing_ok=True)
    size = rendition.stat().st_size
    table.compare("serve-rendition-nginx", f"serve a {size // 1024} KiB rendition (nginx, one worker; wrk loopback)",
                  f"nginx, {path.rsplit('/', 3)[-3]} rendition under /media/ (immutable caching)",
                  Sample(rates["rendition"], "req/s", True), Sample(rates["static"], "req/s", True),
                  "nginx, same bytes as a plain file", at_least=0.9)
