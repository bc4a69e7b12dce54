"""The suite's own isolation (tests/support/folders.py): no test app or process it starts keeps files in the
checkout, where the other xdist worker's tests would read, grow or delete them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from feedsvc.config import DEFAULTS
from tests.support.apps import ROOT

SHOW_FOLDERS = "from wsgi import app; print(app.instance_path); print(app.config['MEDIA_DIR'])"


def test_a_test_app_keeps_its_files_in_the_tests_own_instance_folder(make_app, instance_folder):
    app = make_app()
    assert Path(app.instance_path) == instance_folder
    assert not instance_folder.is_relative_to(ROOT)
    # The media folder: a copy of the shipped images, not the checkout's (where renditions are made).
    media, shipped = Path(app.config["MEDIA_DIR"]), Path(DEFAULTS["MEDIA_DIR"])
    assert media != shipped and not media.is_relative_to(ROOT)
    assert sorted(p.name for p in media.glob("*.jpg")) == sorted(p.name for p in shipped.glob("*.jpg"))


def test_a_process_the_test_starts_uses_the_same_folders(make_app, instance_folder, tmp_path):
    app = make_app()
    env = {**os.environ, "FEEDSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    shown = subprocess.run([sys.executable, "-c", SHOW_FOLDERS], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-2:] == [str(instance_folder), app.config["MEDIA_DIR"]]

