"""Settings read from FEEDSVC_* environment variables: types, lists, defaults, and errors that name the variable."""
import os
from pathlib import Path

import pytest
from flask import Flask

from feedsvc import close_app, config, create_app
from feedsvc.config import ConfigError
from feedsvc.web import documents


@pytest.fixture
def environ(monkeypatch):
    """The process environment without any FEEDSVC_* variable (or PORT); set(name, value) adds one."""
    for name in [n for n in os.environ if n.startswith("FEEDSVC_") or n == "PORT"]:
        monkeypatch.delenv(name)
    return lambda name, value: monkeypatch.setenv(name, value)


def loaded(tmp_path, test_config=None) -> dict:
    app = Flask("feedsvc-settings", instance_path=str(tmp_path / "instance"))
    config.load(app, test_config)
    return app.config


def test_without_variables_every_default_holds(environ, tmp_path):
    settings = loaded(tmp_path)
    for name, default in config.DEFAULTS.items():
        if name not in ("DATABASE_URL", "API_TOKENS", "FRAME_HOSTS", "SITE_URL", "IMAGE_FORMATS"):  # normalised
            assert settings[name] == default, name
    for name in ("FRAME_HOSTS", "IMAGE_FORMATS"):   # kept as tuples, in the default's order
        assert list(settings[name]) == list(config.DEFAULTS[name]), name
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'feedsvc.db'}"
    assert settings["SITE_URL"] == "http://localhost:8000"


def test_the_instance_folder_is_where_the_variable_says(environ, tmp_path):
    """Two deployments on one checkout (and the tests, each in a folder of its own) keep the files of the
    instance folder apart: the default store, the render spill, change signals, the backfill's place."""
    folder = tmp_path / "elsewhere"
    environ("FEEDSVC_INSTANCE_PATH", str(folder))
    app = create_app({"TESTING": True})
    try:
        assert Path(app.instance_path) == folder
        assert app.config["DATABASE_URL"] == f"sqlite:///{folder / 'feedsvc.db'}" and folder.is_dir()
        spill = documents.cache(app).spill
        assert spill is not None and spill.root == folder / "render-cache"
    finally:
        close_app(app)


def test_the_default_site_url_is_on_the_port_served(environ, tmp_path):
    environ("PORT", "8101")
    assert loaded(tmp_path)["SITE_URL"] == "http://localhost:8101"


def test_variables_are_read_with_the_type_of_their_setting(environ, tmp_path):
    environ("FEEDSVC_FEED_MAX_LIMIT", "300")
    environ("FEEDSVC_FAST_PATH", "yes")
    environ("FEEDSVC_FEED_FULL_TEXT", "0")
    environ("FEEDSVC_SITE_NAME", "ख़बर दर्पण")
    environ("FEEDSVC_SITE_URL", "https://news.example/")
    environ("FEEDSVC_DATABASE_URL", "sqlite:////srv/feedsvc.db")
    settings = loaded(tmp_path)
    assert settings["FEED_MAX_LIMIT"] == 300
    assert settings["FAST_PATH"] is True and settings["FEED_FULL_TEXT"] is False
    assert settings["SITE_NAME"] == "ख़बर दर्पण"
    assert settings["SITE_URL"] == "https://news.example"  # one form, without the trailing slash
    assert settings["DATABASE_URL"] == "sqlite:////srv/feedsvc.db"


def test_lists_are_comma_separated_and_tokens_kept_only_as_digests(environ, tmp_path):
    environ("FEEDSVC_WEBSUB_HUBS", " https://hub.example/ ,, https://pubsubhubbub.example/ ")
    environ("FEEDSVC_API_TOKENS", "एक-token-0123456789abcdef01234567,sha256:" + "ab" * 32)
    settings = loaded(tmp_path)
    assert settings["WEBSUB_HUBS"] == ["https://hub.example/", "https://pubsubhubbub.example/"]
    assert settings["API_TOKEN_DIGESTS"] == [config.token_digest("एक-token-0123456789abcdef01234567"), "ab" * 32]
    assert settings["API_TOKENS"] == []


def test_a_test_config_beats_the_environment(environ, tmp_path):
    environ("FEEDSVC_FEED_DEFAULT_LIMIT", "10")
    assert loaded(tmp_path, {"FEED_DEFAULT_LIMIT": 20})["FEED_DEFAULT_LIMIT"] == 20


def test_unknown_variables_are_not_settings(environ, tmp_path):
    environ("FEEDSVC_NO_SUCH_SETTING", "1")
    assert "NO_SUCH_SETTING" not in loaded(tmp_path)


@pytest.mark.parametrize("name, value, expected", [
    ("FEEDSVC_FEED_MAX_LIMIT", "many", "FEEDSVC_FEED_MAX_LIMIT: expected a whole number, got 'many'"),
    ("FEEDSVC_FAST_PATH", "maybe", "FEEDSVC_FAST_PATH: expected 1/0, true/false, got 'maybe'"),
    ("FEEDSVC_API_TOKENS", "sha256:xyz", "FEEDSVC_API_TOKENS: a sha256: entry needs 64 hex digits"),
    ("FEEDSVC_API_TOKENS", "kam", "FEEDSVC_API_TOKENS: a token of 3 characters is too easy to guess; use at least "
     "32 (python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)"),
])
def test_a_bad_value_is_an_error_that_names_the_variable(environ, tmp_path, name, value, expected):
    environ(name, value)
    with pytest.raises(ConfigError) as raised:
        loaded(tmp_path)
    assert str(raised.value) == expected
