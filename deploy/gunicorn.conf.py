"""gunicorn settings for feedsvc: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Why these values (measured by `make bench` on a 2-core machine; see bench/README.md):
- worker_class "gevent": a connection waits for its bytes in a greenlet, not in a thread, so clients
  that send slowly cost a socket each and nobody else's time. gthread read each request's head and
  body in its thread (one per worker): three connections trickling a header line every 2 s stopped
  every /healthz for as long as they liked, and a slowly sent PUT body held a thread the same way.
  With gevent, 50 such connections leave /healthz and a cached feed at their usual latency
  (tests/test_slow_clients.py; figures in deploy/README.md), at the same CPU cost per cached-feed
  request as gthread (1.00-1.24x the requests per worker CPU-second). Keep-alive connections stay open as
  before. A request's head must arrive within `keepalive` seconds of the previous answer (or of the
  connect): gunicorn reads it under that gevent timeout and closes the connection otherwise.
  The app's own blocking calls cooperate: the standard library is patched in each worker before the
  app is imported, and psycopg 3 (3.1.14+) waits for PostgreSQL through gevent by itself, so with
  PostgreSQL on another machine a worker serves other requests while one waits on the network.
  `--worker-class gthread` (with FEEDSVC_THREADS) still works for comparisons.
- workers = cores + 1: the work is CPU-bound Python; more processes than cores only add memory
  (each worker keeps its own render cache, RENDER_CACHE_MAX_BYTES) and context switches.
- no preload_app: the app opens database connections lazily per worker, and with preloading the
  SQLAlchemy pool would be shared across forks.
- max_requests with jitter: a worker is replaced now and then, a guard against slow leaks in
  third-party code; the render cache refills in a few requests per feed. 0 disables it
  (the memory benchmark does, to see growth rather than hide it).
- memory: a worker holds the app's libraries (gunicorn, gevent and the app: 78-79 MiB RSS once booted,
  2026-12-07, 103-104 before the libraries only writes, images, the CLI and the directory need were
  imported at first use) plus its render cache, its entry fragments and its SQLite page caches; the aim
  is under 100 MiB per worker (bench row worker-rss-1m: 150-153 MiB at 100,000 articles before these
  changes, 104.5-115 after, over three runs; 94-95.3 on 2026-12-07 with the native libraries'
  set-up read by the master, on_starting below, and the app's dates and image cache made smaller).
  So the render cache gets RENDER_CACHE_MAX_BYTES = 4 MiB here (the app's default, 64 MiB, suits one
  big process better than several small ones): in that row's load (1,000+ URLs of ~300 KiB) 8 MiB
  hit 0.5 % of requests, and a hot feed stays in 4 as well.
  The entry fragments get FEED_FRAGMENTS_MAX_BYTES = 2 MiB: the workers share a fragment file
  (feedsvc/render/feeds/fragment_file.py) that already served 93 % of fragment hits with 8 MiB each;
  a warm feed built from them cost 3.9-4.2 ms CPU with 2 MiB, 3.8-4.2 with 8 and 4.0-4.5 with 1
  (process_time, 420 feeds of 70 scopes composed by two apps sharing one file, at 100,000 articles).
  glibc is told to serve blocks over 128 KiB (a rendered feed is ~300 KiB) from mmap at a fixed
  threshold, to keep two arenas, and, after a request that rendered, to hand freed memory back
  (malloc_trim): without these the megabytes a render frees stay in the process and RSS ratchets
  up under load (`make bench`, memory row: 90 MiB and flat with them, 105-120 and growing
  without; 2026-12-08, worker-rss-1m at 1,000,000 articles: 113-116 MiB RSS, PSS 96-97, USS 92 with
  them, 151-220 RSS, PSS 136-203, USS 131-198 with neither the mallopt calls nor the trims). A trim costs
  0.1-0.4 ms CPU there (process_time, in process, each handing back 0.2-2 MiB), at most one a second.
  Python's own allocator stays: PYTHONMALLOC=malloc, which would put every object in glibc's heap
  where a trim can reach it, gave 127-133 MiB RSS (USS 106-112) in the same row.
  The static mirror (nginx) is the cache that scales; the in-process one only spares renders between
  its updates.
- Prometheus multi-process mode: each worker writes its counters to files in
  PROMETHEUS_MULTIPROC_DIR and /metrics adds them up (feedsvc/ops/metrics.py). The directory must be
  empty when the server starts and dead workers' files are marked so gauges do not keep them.

- rate limits: with more than one worker the counters go to Redis (SHARED_RATELIMIT_STORAGE, or
  FEEDSVC_RATELIMIT_STORAGE), so a client's limits are the same whichever worker answers; the app
  refuses to start with per-process memory counters and several workers (FEEDSVC_SERVER_PROCESSES).

Every value can be overridden by environment (FEEDSVC_BIND, FEEDSVC_WORKERS, FEEDSVC_THREADS,
FEEDSVC_MAX_REQUESTS) or on the gunicorn command line.
"""
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time

bind = os.environ.get("FEEDSVC_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FEEDSVC_WORKERS", (os.cpu_count() or 1) + 1))
worker_class = "gevent"
# Connections (slow ones included) one worker holds at once; past that, new ones wait in the listen backlog.
worker_connections = 1000
threads = int(os.environ.get("FEEDSVC_THREADS", 1))   # gthread only (--worker-class gthread)
# Seconds an idle keep-alive connection is held (nginx's upstream keepalive reuses it), and the most a
# client gets to send a request's head (gevent worker): a slowloris trickle is cut after this.
keepalive = 5
timeout = 30                  # a worker silent this long is killed and replaced
graceful_timeout = 20
max_requests = int(os.environ.get("FEEDSVC_MAX_REQUESTS", 20000))
max_requests_jitter = max_requests // 10
# The app writes its own JSON access line per request (feedsvc/ops/metrics.py); gunicorn's would double it.
accesslog = None
errorlog = "-"

os.environ.setdefault("FEEDSVC_RENDER_CACHE_MAX_BYTES", str(4 * 1024 * 1024))
os.environ.setdefault("FEEDSVC_FEED_FRAGMENTS_MAX_BYTES", str(2 * 1024 * 1024))
# 512 KiB of SQLite page cache per pooled connection (and the shared fragment file's) instead of 2 MiB:
# a worker keeps up to 5 of them filled (10 MiB of a worker's RSS); the pages they miss come from the
# OS's file cache, shared by all.
os.environ.setdefault("FEEDSVC_DATABASE_SQLITE_CACHE_KIB", "512")
# On PostgreSQL each worker reads a feed's change counter at most every 0.5 s instead of on every
# request (feedsvc/web/render_cache.CounterCache says why that is safe); about doubles cached hits
# and 304s. SQLite needs no interval: its counters follow every commit exactly (store.change_probe).
os.environ.setdefault("FEEDSVC_FEED_STATE_RECHECK_MS", "500")
# Cached public feeds and their 304s answered at the WSGI layer (feedsvc/web/middleware/fastpath.py).
os.environ.setdefault("FEEDSVC_FAST_PATH", "1")

# Must be set before the workers import prometheus_client (they import the app after the fork).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="feedsvc-metrics-")


# With several workers, rate-limit counters must be shared (feedsvc/web/ratelimit.py refuses per-process
# memory then): this Redis unless FEEDSVC_RATELIMIT_STORAGE names another. Unreachable, each worker
# counts alone until it answers (logged).
SHARED_RATELIMIT_STORAGE = "redis://127.0.0.1:6379/0"


def on_starting(server):
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)   # counters of a previous run must not be added in
    os.makedirs(folder, exist_ok=True)
    # The final worker count (command line included), in the environment the workers inherit.
    os.environ["FEEDSVC_SERVER_PROCESSES"] = str(server.cfg.workers)
    if server.cfg.workers > 1:
        os.environ.setdefault("FEEDSVC_RATELIMIT_STORAGE", SHARED_RATELIMIT_STORAGE)
    _import_native_libraries()
    _check_profiles()


def _check_profiles() -> None:
    """The profile files checked against their schema once, here, in a child process (the master imports
    nothing of the app), so that the workers skip that check and never import jsonschema: 2.7 MiB of each
    worker's RSS, 2.0 of its private memory (feedsvc/profiles CHECKED_ENV). 0.8 CPU-s once, at start-up.
    When the check fails, or cannot run, nothing is passed on and each worker checks the files itself,
    failing as before with the file and field named."""
    directory = os.environ.get("FEEDSVC_PROFILES_DIR")
    done = subprocess.run([sys.executable, "-m", "feedsvc.profiles", *filter(None, [directory])],
                          capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip():
        os.environ["FEEDSVC_PROFILES_CHECKED"] = done.stdout.strip().splitlines()[-1]


# C extensions imported in the master, before the workers fork: (module, what its import reads).
# None of them imports threading, socket or ssl, which the workers' gevent must patch before use.
PRE_FORK_IMPORTS = (
    ("icu", "PyICU registers hundreds of types: 6.8 MiB of ICU's pages, ~1 used by the /feeds sort"),
    ("lxml.etree", "libxml2's and libxslt's set-up"),
    ("_hashlib", "OpenSSL's set-up (libcrypto)"),
)


def _import_native_libraries() -> None:
    """Import-time pages of native libraries read once by the master, not by every worker; nothing
    of the app is imported here (the workers import it after gevent has patched the standard library).

    A page of a library's code or read-only data that a worker never touches is not in its RSS: fork
    copies no page-table entries for such mappings, and the worker faults in only what it runs. What
    a library reads only while being imported thus stays the master's. RSS per worker, a forked child
    of a process that had imported them, two runs each at 100,000 articles: after /feeds, its feeds,
    OPML and sitemap, 84.5 MiB with none and 80.2 with icu; after the first 200 URLs of the
    worker-rss-1m load, 92.0 with icu, 90.4 with lxml.etree too, 89.0 with _hashlib too. PSS moved
    by under 1 MiB: those pages are shared between processes either way.
    """
    import importlib
    for module, _ in PRE_FORK_IMPORTS:
        try:
            importlib.import_module(module)
        except ImportError:   # the app reports a missing one where it needs it
            pass


def post_fork(server, worker):
    _tune_malloc()


def _tune_malloc() -> None:
    """glibc only (elsewhere nothing happens): two arenas, and big blocks always from mmap.

    A gevent worker runs one thread (its greenlets share it), so it only ever uses glibc's main arena;
    the cap on arenas matters for --worker-class gthread, where each thread would get one.

    A rendered feed is a few hundred KiB; glibc's default raises its mmap threshold after the first
    such block is freed, after which they come from the heap and leave it fragmented. A fixed
    128 KiB threshold hands them back to the system when freed. A lower one, 32 KiB, changed nothing
    measurable (worker-rss-1m at 1,000,000 articles, 2026-12-08: 110-117 MiB RSS, USS 92-94, against
    113-120 and 92-97 at 128 KiB).
    """
    libc = _libc()
    try:
        libc.mallopt(-8, 2)              # M_ARENA_MAX
        libc.mallopt(-3, 128 * 1024)     # M_MMAP_THRESHOLD (fixed: no dynamic raise)
        libc.mallopt(-1, 128 * 1024)     # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


_renders_seen = [0]
_render_cache = [None]
_trimmed_at = [0.0]
_trim_pending = [False]
# At most one malloc_trim a second: a trim walks the whole heap and hands its free pages back, and the
# next renders fault them in again; after each render of a write's fan-out (hundreds of feeds in a
# second) that was over half the workers' CPU (bench row `fanout`: 6.5 CPU-s per write with a trim
# per render, 2.9 without). A render within the second is trimmed when the second is over, by a
# timer: left for "the next request", the last renders of a burst kept their freed megabytes for as
# long as the worker then stayed idle (bench row worker-rss-1m: 12-15 MiB per worker, in-process).
TRIM_SECONDS = 1.0


def post_worker_init(worker):
    from feedsvc.web import documents
    try:
        _render_cache[0] = documents.cache(worker.wsgi)
    except (AttributeError, KeyError):   # not feedsvc's app: bench runs its baselines under these settings
        _render_cache[0] = None


def post_request(worker, req, environ, resp):
    # Rendering a feed or a page frees megabytes of short-lived objects that glibc keeps (and RSS
    # with them) unless asked to hand them back; after a request that rendered, it is asked.
    cache = _render_cache[0]
    renders = cache.stats["renders"] if cache is not None else 0
    if renders != _renders_seen[0]:
        _renders_seen[0] = renders
        _trim_soon()


def _trim_soon() -> None:
    """malloc_trim now if none ran in the last TRIM_SECONDS, else once when that second is over."""
    wait = _trimmed_at[0] + TRIM_SECONDS - time.monotonic()
    if wait <= 0:
        _trim()
    elif not _trim_pending[0]:
        _trim_pending[0] = True
        _start_timer(wait, _deferred_trim)


def _start_timer(seconds: float, then) -> None:
    import threading  # here: after the gevent worker has patched it, the timer is a greenlet
    timer = threading.Timer(seconds, then)
    timer.daemon = True
    timer.start()


def _deferred_trim() -> None:
    _trim_pending[0] = False
    _trim()


def _trim() -> None:
    _trimmed_at[0] = time.monotonic()
    _malloc_trim()


@functools.lru_cache(maxsize=1)
def _libc():
    """glibc, found once (find_library runs ldconfig in a child process), or None elsewhere."""
    import ctypes
    import ctypes.util
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _malloc_trim() -> None:
    try:
        _libc().malloc_trim(0)
    except AttributeError:
        pass


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
