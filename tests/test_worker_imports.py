"""A worker that only serves stored articles holds none of the libraries that only writes, images, the
CLI, the feed directory or the OPML need: each is megabytes of RSS in every gunicorn worker (bench row worker-rss-1m,
target < 100 MiB per worker), imported where it is first used instead."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# module -> what needs it (and the size measured in a worker, 2026-12-07)
WRITE_OR_TOOL_ONLY = {
    "jsonschema_rs": "validating a written record (6 MiB)",
    "PIL": "probing and resizing a written image, a missing rendition (4-5 MiB)",
    "nh3": "sanitising a written body, a profile's html rule (1.5 MiB)",
    "icu": "the collation of the feed directory and the OPML (7 MiB)",
    "feedsvc.validate": "`flask validate` and VALIDATE_ON_RENDER (3.5 MiB with the CLI's modules)",
    "feedsvc.publish.mirror": "`flask export` (with the above)",
    "sqlalchemy.dialects.postgresql": "a PostgreSQL store, whose engine imports it (2 MiB)",
}
SERVE = """
import json, sys
from feedsvc import create_app
app = create_app()
client = app.test_client()
slug = json.loads(client.get("/feeds/feed.json").get_data())["items"][0]["url"].rstrip("/").rsplit("/", 1)[-1]
for path in ("/feeds/rss.xml", "/feeds/atom.xml", "/feeds/feed.json", "/sitemaps/news.xml",
             f"/articles/{slug}", f"/amp/{slug}"):
    assert client.get(path).status_code == 200, path
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_serving_feeds_and_pages_imports_no_write_or_tool_library(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDSVC_DATABASE_URL": f"sqlite:///{tmp_path}/store.db",
           "FEEDSVC_SITE_URL": "http://news.example"}   # FEEDSVC_MEDIA_DIR: the test process's copy
    records = sorted(str(p) for p in (ROOT / "articles").glob("*.json"))
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "import-articles", *records], cwd=ROOT,
                   env=env, check=True, capture_output=True, timeout=300)
    served = subprocess.run([sys.executable, "-c", SERVE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert served.returncode == 0, served.stderr
    loaded = set(json.loads(served.stdout.splitlines()[-1]))
    assert {name: why for name, why in WRITE_OR_TOOL_ONLY.items() if name in loaded} == {}
