"""Aggregator profile feeds: every scope's feed, shaped to one consumer's rules (feedsvc/profiles).

    /feeds/profile/<name>/rss.xml, /feeds/profile/<name>/<kind>/<key>/atom.xml, ...  (the formats it allows)
    /feeds/profile/<name>/feeds.opml   its feeds of every scope
    /feeds/profiles.json, /feeds/profiles   every profile, its rules and sources, its site feeds

Profiles are loaded when the blueprint is registered (start-up): a malformed file stops the app.
A profile feed is a `FeedPage` with its own edition, so it is rendered once per change of its scope
and answered with 304s like any feed; the public full-text entries it starts from are built once
per change and shared by every profile (render/profiles.py shapes a copy); with the app's entry
fragments, a page is composed from its entries' remembered bytes (render/profile_fragments.py).
"""
from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timezone
from functools import partial

from flask import Blueprint, current_app, render_template

from feedsvc.profiles import Profile, UnknownProfile
from feedsvc.profiles import load as load_profiles
from feedsvc.render import profile_fragments
from feedsvc.render import profiles as shaping
from feedsvc.render.feeds import opml, urls
from feedsvc.render.feeds.formats import FORMATS
from feedsvc.render.feeds.model import Scope
from feedsvc.web import db
from feedsvc.web.documents import HTML_TYPE, Document, fragments, site
from feedsvc.web.feeds import Edition, FeedPage, OpmlDocument

bp = Blueprint("profile_feeds", __name__)
JSON_TYPE = "application/json"

_PROFILES, _BASES, _STAMPS = "feedsvc.profiles", "feedsvc.profile_bases", "feedsvc.profile_stamps"
BASES_KEPT = 64   # shared public entries of this many scope states, the newest kept


@bp.record_once
def _load(state) -> None:
    state.app.extensions[_PROFILES] = load_profiles(state.app.config.get("PROFILES_DIR"))
    state.app.extensions[_BASES] = OrderedDict()
    state.app.extensions[_STAMPS] = OrderedDict()


def all_profiles() -> dict[str, Profile]:
    return profiles_of(current_app)


def profiles_of(app) -> dict[str, Profile]:
    """The profiles an app serves (loaded when it started), by name."""
    return app.extensions.get(_PROFILES, {})


def profile_named(name: str) -> Profile:
    profile = all_profiles().get(name)
    if profile is None:
        raise UnknownProfile(name, sorted(all_profiles()))
    return profile


def _per_state(kept: str, scope: Scope, state, load):
    """load(conn, site, scope, state, profiles), once per scope state; the newest BASES_KEPT kept."""
    bases = current_app.extensions[kept]
    key = (scope.id, state.version, state.modified_at)
    if key not in bases:
        bases[key] = load(db.connection(), site(), scope, state, all_profiles().values())
        while len(bases) > BASES_KEPT:
            bases.popitem(last=False)
    bases.move_to_end(key)
    return bases[key]


def _base_feed(scope: Scope, state):
    """The public full-text feed of a scope state, built once for every profile and format."""
    return _per_state(_BASES, scope, state, shaping.load_base_feed)


def _stamped_base(scope: Scope, state) -> profile_fragments.Base:
    """What every profile's page composed from fragments starts from: articles read only when needed."""
    return _per_state(_STAMPS, scope, state, partial(profile_fragments.load_base, fragments=fragments()))


class ProfileFeedPage(FeedPage):
    """A scope's feed in one format, shaped by a profile."""

    def __init__(self, profile: Profile, fmt: str, kind: str, key: str, *, self_url: str, partner: bool = False):
        if fmt not in profile.formats:
            raise UnknownProfile(profile.name, sorted(all_profiles()),
                                 f"the {profile.name} profile serves {', '.join(profile.formats)} only")
        self.profile = profile
        edition = Edition(f"profile:{profile.name}", full_text=True, self_url=self_url,
                          cors=False if partner else None)
        super().__init__(fmt, kind, key, limit=site().default_limit, after=None, edition=edition)
        self.self_url = self_url

    def build(self) -> bytes:
        now, remembered = datetime.now(timezone.utc), fragments()
        if remembered is not None:
            composed = profile_fragments.render(self.profile, self.fmt, _stamped_base(self.scope, self.state),
                                                conn=db.connection(), self_url=self.self_url, now=now,
                                                fragments=remembered)
            if composed is not None:
                return composed
        feed = shaping.shape(self.profile, _base_feed(self.scope, self.state), fmt=self.fmt,
                             self_url=self.self_url, now=now)
        return shaping.write(self.profile, self.fmt, feed)


def profile_feed_page(profile: str, fmt: str, kind: str, key: str) -> ProfileFeedPage:
    """The document a profile feed URL names (UnknownProfile for a profile or format it does not serve)."""
    chosen = profile_named(profile)
    self_url = shaping.profile_feed_url(chosen.name, Scope(kind, key), fmt, site().url)
    return ProfileFeedPage(chosen, fmt, kind, key, self_url=self_url)


def profile_feed(profile: str, fmt: str, kind: str, key: str):
    return profile_feed_page(profile, fmt, kind, key).response()


PROFILE_ROUTES = tuple(urls.Route(r.endpoint, f"{shaping.PROFILE_FEEDS}/<profile>{r.rule[len(urls.FEEDS):]}",
                                  r.defaults) for r in urls.FEED_ROUTES)
urls.add_routes(bp, PROFILE_ROUTES, profile_feed, endpoint="profile_feed", methods=urls.METHODS)


# ---- lists of profiles and of a profile's feeds ------------------------------------------------

class ProfileOpml(OpmlDocument):
    def __init__(self, profile: Profile):
        super().__init__(profile.formats[0])
        self.profile = profile
        self.cache_key = ("opml", "profile", profile.name)

    def build(self) -> bytes:
        name, the_site = self.profile.name, site()
        return opml.write(the_site, self.groups, fmt=self.fmt, states=self.scopes,
                          title=f"{the_site.name} — {self.profile.label}",
                          url_of=lambda scope, fmt, language=None: shaping.profile_feed_url(name, scope, fmt, the_site.url))


@bp.route(shaping.profile_opml_path("<profile>"), methods=["GET", "HEAD", "OPTIONS"])
def profile_opml(profile: str):
    return ProfileOpml(profile_named(profile)).response()


def directory() -> list[dict]:
    """Every profile: its name, label, status, its site feed in each format it serves, its rules with sources."""
    the_site = site()
    return [{"name": p.name, "label": p.label, "status": p.status, "status_note": p.status_note,
             "feeds": {fmt: shaping.profile_feed_url(p.name, Scope("site"), fmt, the_site.url) for fmt in p.formats},
             "opml": shaping.profile_opml_url(p.name, the_site.url), "rules": p.as_json()}
            for p in sorted(all_profiles().values(), key=lambda p: p.name)]


class ProfileDirectory(Document):
    """/feeds/profiles.json (for programs) and /feeds/profiles (for people): the same list. A cacheable
    document like the feed directory, so the static mirror holds it and nginx serves it with the app's
    headers; it changes only with the profiles and the site's settings (part of every validator)."""

    def __init__(self, fmt: str):
        self.fmt, self.cache_key = fmt, ("profiles", fmt)
        self.content_type = JSON_TYPE if fmt == "json" else HTML_TYPE

    def load_state(self):
        return (0, ";".join(p.digest() for p in sorted(all_profiles().values(), key=lambda p: p.name))), None

    def build(self) -> bytes:
        if self.fmt == "json":
            return (current_app.json.dumps({"profiles": directory()}) + "\n").encode("utf-8")
        return render_template("feeds/profiles.html", site=site(), profiles=directory(), formats=FORMATS).encode("utf-8")


@bp.route(f"{shaping.PROFILE_DIRECTORY}.json", methods=["GET", "HEAD"])
def profiles_json():
    return ProfileDirectory("json").response()


@bp.route(shaping.PROFILE_DIRECTORY, methods=["GET", "HEAD"])
def profiles_page():
    return ProfileDirectory("html").response()
