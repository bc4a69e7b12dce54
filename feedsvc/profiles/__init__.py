"""Aggregator profiles: one TOML file per consumer, its rules and the sources each rule rests on.

A profile is data (msn.toml, smartnews.toml, ...), checked against profile.schema.json when the app
starts: a malformed file stops start-up with `ProfileError`, naming the file and the field. The
rules are applied to feeds by feedsvc/render/profiles.py and checked by feedsvc/profiles/checks.py
(which the validator uses too). Lengths of titles and descriptions are counted in grapheme
clusters (what a reader sees as one letter; a Devanagari conjunct is one).
"""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import jsonschema

BUILT_IN = Path(str(resources.files("feedsvc").joinpath("profiles")))
SCHEMA_FILE = "profile.schema.json"
# sha256 digests of profile files' text already checked against the schema by the gunicorn master
# (`python -m feedsvc.profiles`, deploy/gunicorn.conf.py), comma-separated: a worker reading the same
# text skips that check and never imports jsonschema: 2.7 MiB less RSS per worker (2.0 private), the
# app booted and asked /healthz and /feeds/profiles.json, four interleaved runs each (2026-12-08).
# Text whose digest is not listed (a file changed since, or no master) is checked as before.
CHECKED_ENV = "FEEDSVC_PROFILES_CHECKED"


class ProfileError(ValueError):
    """A profile file that cannot be used: which file, which field, why."""

    def __init__(self, path: Path | str, field_path: str, reason: str):
        self.path, self.field, self.reason = str(path), field_path, reason
        super().__init__(f"{path}: {field_path}: {reason}")


class UnknownProfile(LookupError):
    """A profile this app does not serve, or a format the profile does not allow (`message` then says so);
    `known` holds the names the app serves, which the 404 answer lists (web/errors.py)."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...], message: str | None = None):
        self.profile_name, self.known, self.message = name, tuple(known), message
        super().__init__(message or f"no feed profile named {name[:64]!r}")


@dataclass(frozen=True)
class Source:
    key: str
    url: str
    read: str
    title: str = ""
    status: str = ""


@dataclass(frozen=True)
class Profile:
    """One consumer's rules; `rules[name]` holds a rule's values (as profile.schema.json defines them)."""
    name: str
    label: str
    status: str
    formats: tuple[str, ...]
    sources: Mapping[str, Source]
    rules: Mapping[str, Mapping]
    status_note: str = ""
    path: str = field(default="", compare=False)

    def rule(self, name: str) -> Mapping:
        """A rule's values, or an empty mapping when the profile sets no such rule."""
        return self.rules.get(name, MappingProxyType({}))

    def value(self, rule: str, key: str, default=None):
        return self.rule(rule).get(key, default)

    def digest(self) -> str:
        """Changes whenever what the profile's feeds show may change: part of the static mirror's stamps
        and of every shaped entry's and fragment's key."""
        return self._digest

    # Cached (the instance's fields never change): every render of a profile feed asks for it.
    @cached_property
    def _digest(self) -> str:
        rules = {name: dict(values) for name, values in self.rules.items()}
        text = json.dumps([self.name, self.label, self.status, self.status_note, self.formats, rules],
                          sort_keys=True, ensure_ascii=False)
        return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()

    def as_json(self) -> dict:
        """The profile as /feeds/profiles.json lists it: each rule with its sources' URLs and dates."""
        return {name: {**{k: v for k, v in values.items() if k != "sources"},
                       "sources": [{"key": key, "url": self.sources[key].url, "read": self.sources[key].read}
                                   for key in values["sources"]]}
                for name, values in self.rules.items()}


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    # Imported here: a gunicorn worker whose master checked the files never needs it (CHECKED_ENV).
    import jsonschema
    schema = json.loads((BUILT_IN / SCHEMA_FILE).read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _field(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(profile)"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checked_digests() -> frozenset[str]:
    return frozenset(filter(None, os.environ.get(CHECKED_ENV, "").split(",")))


def _check_schema(path: Path, data: dict) -> None:
    import jsonschema
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ProfileError(path, _field(error), error.message)


def parse(path: Path) -> Profile:
    """One profile file, validated; ProfileError names the file, the field and why."""
    try:
        text = path.read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(path, "(file)", str(exc)) from None
    if text_digest(text) not in _checked_digests():
        _check_schema(path, data)
    if data["name"] != path.stem:
        raise ProfileError(path, "name", f"is {data['name']!r}; a profile is named after its file ({path.stem!r})")
    for rule, values in data["rules"].items():
        for i, key in enumerate(values["sources"]):
            if key not in data["sources"]:
                raise ProfileError(path, f"rules.{rule}.sources.{i}", f"names {key!r}, which is not in [sources]")
    sources = {key: Source(key, **values) for key, values in data["sources"].items()}
    rules = {name: MappingProxyType(values) for name, values in data["rules"].items()}
    return Profile(name=data["name"], label=data["label"], status=data["status"], formats=tuple(data["formats"]),
                   sources=MappingProxyType(sources), rules=MappingProxyType(rules),
                   status_note=data.get("status_note", ""), path=str(path))


def load(extra_directory: str | Path | None = None) -> dict[str, Profile]:
    """The built-in profiles, then those of `extra_directory` (which may replace a built-in by name)."""
    profiles = dict(built_in())
    if extra_directory:
        profiles.update((profile.name, profile) for profile in map(parse, _files(Path(extra_directory))))
    return profiles


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def checked_digests(extra_directory: str | Path | None = None) -> list[str]:
    """Every file load() reads, each checked against the schema here (ProfileError otherwise), as the
    digests CHECKED_ENV lists."""
    files = _files(BUILT_IN) + (_files(Path(extra_directory)) if extra_directory else [])
    digests = []
    for path in files:
        text = path.read_text("utf-8")
        _check_schema(path, tomllib.loads(text))
        digests.append(text_digest(text))
    return digests


@lru_cache(maxsize=1)
def built_in() -> dict[str, Profile]:
    """The package's profiles, read and validated once per process (they ship with the code); shared and
    immutable (Profile is frozen, its tables are read-only views), so every app may hold the same ones."""
    return {profile.name: profile for profile in map(parse, _files(BUILT_IN))}
