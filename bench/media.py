"""Images: rendition generation per core, the import of records whose images are already processed, and
a rendition served by nginx from the mirror against nginx's static rate for the same bytes.

Renditions are made by feedsvc.ingest.images as ingest makes them (every configured size and format,
AVIF included where Pillow writes it), in this process: one core. The sample images are the shipped
ones (articles/media), copied to a folder of the run's own so nothing is reused from an earlier run.
"""
from __future__ import annotations

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

# A large square, a tall portrait and a 16:9 lead: what the renditions are cut from most of the time.
SOURCES = ("kite-festival.jpg", "temple-steps.jpg", "cricket.jpg")
RENDITION_ROWS = {
    "renditions": "every configured rendition (sizes × formats) of one image, made in one process (images/s per core)",
}
IMPORT_IMAGE_ROWS = {
    "import-images": "BENCH_IMPORT_ROWS records whose local images are already processed, vs import-rate (target ≥ 2,000/s)",
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


def _import_once(corpus: Path, media_dir: Path) -> tuple[float, int]:
    """(records per second, records stored with their renditions) of one import into a fresh database."""
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
            processed = sum('"renditions"' in row.article for row in conn.execute(store.articles.select()))
        engine.dispose()
    return rate, processed


def import_with_images(table: Table, baseline: Sample, repeats: int = 3) -> None:
    """The import-rate corpus, whose records point at the shipped images, into a media folder where an
    earlier import already made every rendition: what a re-import or a steady feed of CMS records costs."""
    corpus = load.corpus(IMPORT_ROWS)
    with tempfile.TemporaryDirectory(dir=load.OUT) as folder:
        media = Path(folder) / "media"
        shutil.copytree(load.ROOT / "articles" / "media", media, ignore=shutil.ignore_patterns(images.RENDITIONS_DIR))
        _import_once(corpus, media)   # makes the renditions
        made = sum(1 for _ in (media / images.RENDITIONS_DIR).rglob("*.*"))
        results = [_import_once(corpus, media) for _ in range(repeats)]
    sample = Sample([rate for rate, _ in results], "records/s", higher_is_better=True)
    row = table.compare("import-images", "import into SQLite", "records with processed local images (renditions on disk)",
                        sample, baseline, "import-rate", note=f"{results[0][1]:,} stored with renditions; {made} files")
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
