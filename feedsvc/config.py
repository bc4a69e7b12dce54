"""Settings: defaults, overridden by FEEDSVC_* environment variables, overridden by a test config."""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from feedsvc.ingest import images
from feedsvc.ingest.frames import DEFAULT_FRAME_HOSTS, FrameHostError, frame_policy

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    # Storage
    # The folder of this machine's files (the default SQLite store, the render spill, the shared fragment
    # file, change signals, the media backfill's place); None: Flask's, instance/ beside the package.
    # The test suite gives each app its own, so tests running side by side never share these files.
    "INSTANCE_PATH": None,
    "DATABASE_URL": None,  # None: SQLite file feedsvc.db in the instance folder
    # Seconds a request waits for a locked SQLite file or a PostgreSQL connection before it is answered
    # from the render cache (stale-if-error) or with 503; the import command waits longer.
    "DATABASE_TIMEOUT": 5,
    # PostgreSQL connections one process keeps (POOL_SIZE) and opens beyond them at peaks (MAX_OVERFLOW):
    # a process never holds more than their sum; deploy/SCALING.md gives the per-machine formula.
    "DATABASE_POOL_SIZE": 5,
    "DATABASE_MAX_OVERFLOW": 10,
    # Off behind PgBouncer in transaction mode (before 1.21 it cannot keep a session's prepared statements
    # across transactions that land on different server connections): psycopg then never prepares.
    "DATABASE_PREPARED_STATEMENTS": True,
    # KiB of page cache per SQLite connection (the store's and the shared fragment file's); 0 keeps
    # SQLite's own (2 MiB). Each pooled connection of each worker fills its own; deploy/gunicorn.conf.py
    # sets a smaller one (its docstring says why).
    "DATABASE_SQLITE_CACHE_KIB": 0,
    # The publication
    # Where readers find the site; every link is made absolute against it when a document is built, so
    # changing it moves every link at once. Unset: http://localhost:$PORT (`make run PORT=8101`).
    "SITE_URL": None,
    # The host every guid and Atom id is minted under (tag:<authority>,2025:articles/<id>), fixed in the
    # store at its first start (store_settings) and never changed after; unset: the host of SITE_URL then.
    "ID_AUTHORITY": None,
    "SITE_NAME": "समाचार दर्पण",
    "SITE_DESCRIPTION": "देश, दुनिया, खेल, कारोबार और मनोरंजन की ताज़ा ख़बरें हिंदी में",
    "SITE_LANGUAGE": "hi",
    "SITE_LOGO": "/static/logo.png",
    "SITE_ICON": "/static/icon.png",
    "SITE_COPYRIGHT": "© समाचार दर्पण। सर्वाधिकार सुरक्षित।",
    "TIMEZONE": "Asia/Kolkata",
    "MEDIA_DIR": str(PROJECT_ROOT / "articles" / "media"),
    # Renditions of every local image (feedsvc/ingest/images.py), name:WIDTHxHEIGHT: made at ingest, served
    # under /media/renditions/ with immutable caching; no other size exists. lead_4x3 and lead_1x1 complete
    # the three shapes Google asks of an article's structured-data images (16x9, 4x3, 1x1).
    "IMAGE_RENDITIONS": ["lead:1200x675", "lead_4x3:1200x900", "lead_1x1:1200x1200", "social:1200x630",
                         "square:720x720", "thumbnail:400x225", "logo:512x512"],
    # Widths, name:WIDTH, of the renditions of images inside article bodies: the picture whole at its own
    # shape (never cropped, never enlarged), offered by width in srcset on pages and AMP pages.
    "IMAGE_BODY_RENDITIONS": ["body:1200", "body_medium:720", "body_small:400"],
    # Formats each rendition is written in; those this Pillow cannot write (AVIF without libavif) are left out.
    "IMAGE_FORMATS": ["jpeg", "webp", "avif"],
    # Feeds
    "FEED_DEFAULT_LIMIT": 50,
    "FEED_MAX_LIMIT": 200,
    # Partner pages: at most this many items, ended earlier (at whole items, at least one) once their text
    # (title, summary, full HTML) passes PARTNER_PAGE_TEXT_BYTES; README "Partners" gives the page sizes that follow.
    "PARTNER_MAX_LIMIT": 1000,
    "PARTNER_PAGE_TEXT_BYTES": 2 * 1024 * 1024,
    "FEED_FULL_TEXT": True,
    "FEED_TTL_MINUTES": 5,
    "TOMBSTONE_DAYS": 30,
    # The GA4 measurement id (G-...) of the snf:analytics tag in each SmartNews profile item, which SmartNews
    # runs when it shows the article in its own viewer (SmartView First); empty: no tag.
    "SMARTNEWS_ANALYTICS_ID": "",
    "CACHE_MAX_AGE": 300,
    "CACHE_STALE_WHILE_REVALIDATE": 600,
    "CACHE_STALE_IF_ERROR": 86400,
    "RENDER_CACHE_MAX_BYTES": 64 * 1024 * 1024,  # rendered feeds (all encodings) kept per process
    # Feed entries' bytes per article version kept per process, feeds composed from them
    # (feedsvc/render/feeds/fragments.py); 0 writes every feed whole.
    "FEED_FRAGMENTS_MAX_BYTES": 8 * 1024 * 1024,
    # When several processes serve (SERVER_PROCESSES), the fragments any of them rendered are also kept in
    # one SQLite file they share (feedsvc/render/feeds/fragment_file.py; None: fragments/ in the instance
    # folder), the oldest deleted beyond this many bytes; 0 keeps each process's own only.
    "FEED_FRAGMENTS_SHARED_DIR": None,
    "FEED_FRAGMENTS_SHARED_MAX_BYTES": 64 * 1024 * 1024,
    # Documents over a quarter of that are kept as files every worker shares (feedsvc/web/render_spill.py),
    # least recently used deleted beyond RENDER_SPILL_MAX_BYTES in all; 0 keeps none (rendered per request).
    "RENDER_SPILL_DIR": None,   # None: render-cache/ in the instance folder
    "RENDER_SPILL_MAX_BYTES": 512 * 1024 * 1024,
    # How long (ms) a worker trusts the change counters it last read (render_cache.CounterCache); 0: read per request
    "FEED_STATE_RECHECK_MS": 0,
    # Answer cached public feeds at the WSGI layer by replaying the app's own responses (feedsvc/web/middleware/fastpath.py)
    "FAST_PATH": False,
    "WEBSUB_HUBS": [],
    # WebSub sender (feedsvc/publish/websub.py): "thread" = a daemon thread in each web worker, "worker" = only
    # `flask websub worker` sends. Retries back off exponentially from BASE to MAX seconds, with jitter.
    "WEBSUB_SENDER": "thread",
    "WEBSUB_TIMEOUT": 10,
    "WEBSUB_TOPICS_PER_REQUEST": 20,
    "WEBSUB_RETRY_BASE_SECONDS": 15,
    "WEBSUB_RETRY_MAX_SECONDS": 3600,
    "WEBSUB_POLL_SECONDS": 2,
    "WEBSUB_LEASE_SECONDS": 120,
    "WEBSUB_KEEP_SENT_DAYS": 7,
    # Scheduled publication (feedsvc/publish/schedule.py): "thread" = a daemon thread in each web worker,
    # "worker" = only `flask schedule run`. Each looks for articles scheduled elsewhere every POLL seconds
    # (every IDLE seconds while none is scheduled); those scheduled in its own process wake it at once.
    "SCHEDULER": "thread",
    "SCHEDULE_POLL_SECONDS": 1,
    "SCHEDULE_IDLE_SECONDS": 30,
    # Cache purges by surrogate key (feedsvc/publish/purge.py), sent through the WebSub outbox with its retries
    "PURGE_FASTLY_API": "https://api.fastly.com",
    "PURGE_FASTLY_SERVICE": "",
    "PURGE_FASTLY_KEY": "",
    "PURGE_CLOUDFLARE_API": "https://api.cloudflare.com/client/v4",
    "PURGE_CLOUDFLARE_ZONE": "",
    "PURGE_CLOUDFLARE_TOKEN": "",
    "PURGE_WEBHOOKS": [],   # URLs POSTed {"keys": [...]}
    # Sitemaps (feedsvc/render/sitemaps.py): per-file limits of the sitemaps.org protocol
    "SITEMAP_MAX_URLS": 50000,
    "SITEMAP_MAX_BYTES": 50 * 1024 * 1024,
    # Ingest API
    "API_TOKENS": [],  # stored as sha256 hex digests, never as given
    # Bearer tokens /metrics asks for, kept like API_TOKENS; none: /metrics answers loopback clients only
    "METRICS_TOKENS": [],
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
    # Rate limits (feedsvc/web/ratelimit.py) and their storage: memory:// (one process only) or redis://...
    "RATELIMIT_STORAGE": "memory://",
    "RATELIMIT_ENABLED": True,
    # Renders per client address (per partner key): a document not in the render cache, an oEmbed answer,
    # a headline widget. 304s and cached copies cost none of it. A reader subscribing to 300 feeds at once
    # renders up to 300 documents in a minute; the hourly figure bounds a sustained attempt.
    "RATELIMIT_PUBLIC": "600/minute;6000/hour",
    "RATELIMIT_PARTNER": "1200/minute;12000/hour",
    # Every request of a bucket (304s, cached copies, errors), per client, is held to this many times the
    # limits above: far above any reader's pattern, but a flood from one address is stopped.
    "RATELIMIT_CEILING_FACTOR": 10,
    # Wrong API tokens per client address; past it every token is refused from there until the window ends.
    "RATELIMIT_AUTH_FAILURES": "10/minute;50/hour",
    "RATELIMIT_KEY_PREFIX": "feedsvc",
    # Reverse proxies in front that append the client to X-Forwarded-For (nginx: 1). 0 trusts no such
    # header: behind a proxy every client would then share the proxy's address and its rate limit.
    "TRUSTED_PROXY_HOPS": 0,
    # Processes serving this app with these settings (deploy/gunicorn.conf.py sets its worker count): with
    # more than one, rate-limit counters must be shared (RATELIMIT_STORAGE redis://), memory:// is refused.
    "SERVER_PROCESSES": 1,
    # Embeds
    "OEMBED_CACHE_AGE": 3600,
    # Where an article body may frame a player or post from (feedsvc/ingest/frames.py): hosts, or
    # host/path for that path and below, comma-separated. Other frames become links at ingest; the
    # list is also the pages' CSP frame-src. The record `embeds` use www.youtube-nocookie.com/embed
    # (canonical pages), www.youtube.com/embed and www.instagram.com (AMP): keep those to keep them.
    "FRAME_HOSTS": list(DEFAULT_FRAME_HOSTS),
    "VALIDATE_ON_RENDER": False,
    # Observability and the static mirror (feedsvc/ops/metrics.py, feedsvc/publish/mirror.py)
    "ACCESS_LOG": True,    # one JSON line per request on stderr (logger feedsvc.access)
    "ACCESS_LOG_FLUSH_MS": 1000,   # longest a line waits to be written with others (feedsvc/ops/access_log.py); 0: at once
    "MIRROR_DIR": None,    # the folder `flask export --watch` keeps; set it to get mirror lag in /metrics
    # The desk (/desk/, feedsvc/web/desk.py): its tokens, kept like API_TOKENS; none: /desk/ answers 404.
    "DESK_TOKENS": [],
    # Signs the desk's session cookie and its forms' CSRF tokens (at least 32 characters). Required with
    # DESK_TOKENS; a test app without one gets a random key of its own process.
    "SECRET_KEY": None,
    # The desk's counts (feedsvc/ops/desk_counters.py) are written every this many seconds per process, and at exit.
    "DESK_COUNTS": True,    # off: serving counts nothing for the desk (the bench's baseline for its cost)
    "DESK_FLUSH_SECONDS": 30,
    "DESK_KEEP_DAYS": 90,   # days of counts kept; older rows are dropped when counts are written
    "DESK_KEEP_HOURS": 48,  # hours of hourly counts kept (the desk shows the last 24)
}

# A token given as itself must be at least this long (sha256: digests cannot be measured).
MIN_TOKEN_LENGTH = 32
HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
GA4_MEASUREMENT_ID = re.compile(r"G-[A-Z0-9]{4,20}")
LIST_SETTINGS = {"API_TOKENS", "METRICS_TOKENS", "DESK_TOKENS", "WEBSUB_HUBS", "FRAME_HOSTS", "PURGE_WEBHOOKS",
                 "IMAGE_RENDITIONS", "IMAGE_FORMATS"}
INT_SETTINGS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
BOOL_SETTINGS = {k for k, v in DEFAULTS.items() if isinstance(v, bool)}


class ConfigError(ValueError):
    """A setting has a value feedsvc cannot use; the message names the variable."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_token_digests(entries, setting: str = "API_TOKENS") -> list[str]:
    """Tokens as given (at least MIN_TOKEN_LENGTH characters) or as digests (`sha256:<hex>`) -> sha256 hex digests."""
    digests = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("sha256:"):
            hexpart = entry[len("sha256:"):].lower()
            if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
                raise ConfigError(f"FEEDSVC_{setting}: a sha256: entry needs 64 hex digits")
            digests.append(hexpart)
        elif len(entry) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"FEEDSVC_{setting}: a token of {len(entry)} characters is too easy to guess; "
                              f"use at least {MIN_TOKEN_LENGTH} (python3 -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))' makes one)")
        else:
            digests.append(token_digest(entry))
    return digests


def token_matches(presented: str, digests: list[str]) -> bool:
    """Whether `presented` is one of the tokens whose `digests` are kept."""
    digest = token_digest(presented)
    # Compare against every digest without stopping early, so timing says nothing.
    matched = False
    for known in digests:
        matched |= hmac.compare_digest(digest, known)
    return matched


def _coerce(name: str, raw: str):
    if name in LIST_SETTINGS:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if name in BOOL_SETTINGS:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"FEEDSVC_{name}: expected 1/0, true/false, got {raw!r}")
    if name in INT_SETTINGS:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"FEEDSVC_{name}: expected a whole number, got {raw!r}") from None
    return raw


def from_environ(environ=os.environ) -> dict:
    """The FEEDSVC_* variables that name a known setting, coerced to the setting's type."""
    found = {}
    for name in DEFAULTS:
        raw = environ.get(f"FEEDSVC_{name}")
        if raw is not None:
            found[name] = _coerce(name, raw)
    return found


def default_site_url(environ=os.environ) -> str:
    """The site on this machine at the port it is served on (`make run` passes PORT through)."""
    return f"http://localhost:{environ.get('PORT') or 8000}"


def secret_key(settings) -> str | None:
    """SECRET_KEY as set; one made for this process only in a test app (its cookies die with it)."""
    key = settings.get("SECRET_KEY")
    if key:
        if len(key) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"FEEDSVC_SECRET_KEY: {len(key)} characters are too easy to guess; "
                              f"use at least {MIN_TOKEN_LENGTH}")
        return key
    if settings.get("TESTING"):
        return secrets.token_urlsafe(32)
    if settings.get("DESK_TOKEN_DIGESTS"):
        raise ConfigError("FEEDSVC_SECRET_KEY is required with FEEDSVC_DESK_TOKENS: it signs the desk's session "
                          "cookie and CSRF tokens (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return None


def load(app, test_config: dict | None = None) -> None:
    app.config.from_mapping(DEFAULTS)
    app.config.update(from_environ())
    if test_config:
        app.config.update(test_config)
    if app.config["INSTANCE_PATH"]:
        app.instance_path = str(Path(app.config["INSTANCE_PATH"]).resolve())
    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'feedsvc.db'}"
    app.config["SITE_URL"] = (app.config["SITE_URL"] or default_site_url()).rstrip("/")
    if app.config["ID_AUTHORITY"]:
        app.config["ID_AUTHORITY"] = app.config["ID_AUTHORITY"].strip().lower()
        if not HOST_NAME.fullmatch(app.config["ID_AUTHORITY"]):
            raise ConfigError(f"FEEDSVC_ID_AUTHORITY: {app.config['ID_AUTHORITY']!r} is not a host name "
                              "(letters, digits, dots, hyphens)")
    analytics = app.config["SMARTNEWS_ANALYTICS_ID"] = (app.config["SMARTNEWS_ANALYTICS_ID"] or "").strip()
    if analytics and not GA4_MEASUREMENT_ID.fullmatch(analytics):
        raise ConfigError(f"FEEDSVC_SMARTNEWS_ANALYTICS_ID: {analytics[:40]!r} is not a GA4 measurement id (G-XXXXXXXXXX)")
    app.config["API_TOKEN_DIGESTS"] = parse_token_digests(app.config["API_TOKENS"])
    app.config["API_TOKENS"] = []  # only the digests are kept in memory
    app.config["METRICS_TOKEN_DIGESTS"] = parse_token_digests(app.config["METRICS_TOKENS"], "METRICS_TOKENS")
    app.config["METRICS_TOKENS"] = []
    app.config["DESK_TOKEN_DIGESTS"] = parse_token_digests(app.config["DESK_TOKENS"], "DESK_TOKENS")
    app.config["DESK_TOKENS"] = []
    app.config["SECRET_KEY"] = secret_key(app.config)
    app.config["FRAME_HOSTS"] = tuple(app.config["FRAME_HOSTS"])  # hashable: policies are cached per value
    try:
        frame_policy(app.config["FRAME_HOSTS"])
    except FrameHostError as exc:
        raise ConfigError(f"FEEDSVC_FRAME_HOSTS: {exc}") from None
    try:
        app.config["IMAGE_SIZES"] = images.parse_sizes(app.config["IMAGE_RENDITIONS"])
        app.config["IMAGE_BODY_WIDTHS"] = images.parse_widths(app.config["IMAGE_BODY_RENDITIONS"])
        app.config["IMAGE_FORMATS"] = images.known_formats(app.config["IMAGE_FORMATS"])
    except ValueError as exc:
        raise ConfigError(f"FEEDSVC_IMAGE_RENDITIONS / FEEDSVC_IMAGE_BODY_RENDITIONS / FEEDSVC_IMAGE_FORMATS: {exc}") from None
