"""A small Chrome DevTools Protocol client for browser tests: Debian's headless Chromium over a pipe.

With --remote-debugging-pipe Chromium reads commands on fd 3 and writes answers and events on
fd 4, one JSON message each, ended by a NUL byte (the transport Puppeteer's `pipe: true` uses),
so no websocket library is needed. Sessions are flat (one id per page or cross-origin frame);
every event received is kept, in order, in `Chromium.events`.

    with Chromium(tmp_path) as browser:
        page = browser.open_page(url, width=412, height=915, javascript=False)
        node = browser.query(page, "h1")
        browser.outer_html(page, node), browser.box(page, node), browser.evaluate(page, "1 + 1")
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

# No network beyond the local servers a test starts: every other host fails to resolve at once
# (CDNs, YouTube) instead of hanging. The rules apply to IP literals too, hence the exclusions.
LAUNCH_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2, EXCLUDE localhost")
TIMEOUT = 20.0
POLL_SECONDS = 0.05


class DevToolsError(RuntimeError):
    """Chromium answered a command with an error, closed the pipe, or did not answer in time."""


def executable() -> str | None:
    """Debian's Chromium, or None when it is not installed (`make system-deps`)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """A headless Chromium process driven over the DevTools pipe; a context manager."""

    def __init__(self, workdir: str | Path | None = None, *flags: str):
        self._workdir, self._flags = workdir, flags
        self.events: list[dict] = []
        self.process: subprocess.Popen | None = None
        self._buffer = b""
        self._next_id = 0
        self._roots: dict[str, tuple[int, int]] = {}  # session -> (document node id, events seen then)

    def __enter__(self) -> "Chromium":
        binary = executable()
        if binary is None:
            raise DevToolsError("Chromium is not installed (Debian package `chromium`; `make system-deps`)")
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-", dir=self._workdir)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Moved to 10 and above first, so that the redirections to 3 and 4 cannot clobber one another
        # (bash, since dash only takes one-digit descriptors).
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        command = [binary, *LAUNCH_FLAGS, *self._flags, f"--user-data-dir={self._profile.name}",
                   "--remote-debugging-pipe", "about:blank"]
        try:
            self.process = subprocess.Popen(
                ["bash", "-c", f'exec "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-', "bash", *command],
                pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        finally:
            os.close(child_in)
            os.close(child_out)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (DevToolsError, OSError):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (getattr(self, "_to_browser", None), getattr(self, "_from_browser", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if hasattr(self, "_profile"):
            self._profile.cleanup()

    # ---- the protocol ------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = TIMEOUT) -> dict:
        """Send one command and return its result; events read meanwhile go to `events`."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, f"the answer to {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, match: Callable[[dict], bool], *, since: int = 0, timeout: float = TIMEOUT,
                   waiting_for: str = "an event") -> dict:
        """The first event from index `since` on that `match`es, reading more until it comes."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for event in self.events[seen:]:
                if match(event):
                    return event
            seen = len(self.events)
            reply = self._read(deadline, waiting_for)
            if "method" in reply:
                self.events.append(reply)

    def _read(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise DevToolsError(f"Chromium sent nothing for {waiting_for}")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise DevToolsError(f"Chromium closed the pipe while we waited for {waiting_for}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    # ---- pages and frames --------------------------------------------------------------------

    def open_page(self, url: str, *, width: int | None = None, height: int | None = None, scale: float = 1,
                  javascript: bool = True) -> str:
        """A new tab showing `url` once its load event fired; returns its session id.

        `width`/`height` emulate a phone viewport; `javascript=False` disables the page's scripts
        (DevTools' own `evaluate` still works). Cross-origin frames attach as sessions of their own.
        """
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True},
                  session=session)
        if width and height:
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": True}, session=session)
        if not javascript:
            self.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
        self.load(session, url)
        return session

    def load(self, session: str, url: str) -> None:
        """Navigate a tab and wait for its load event (its images, fonts and frames loaded or failed)."""
        since = len(self.events)
        navigated = self.send("Page.navigate", {"url": url}, session=session)
        if navigated.get("errorText"):
            raise DevToolsError(f"{url}: {navigated['errorText']}")
        self._roots.pop(session, None)
        self.wait_event(lambda e: e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session,
                        since=since, waiting_for=f"the load of {url}")

    def frame_session(self, url_prefix: str, *, timeout: float = TIMEOUT) -> str:
        """The session of a cross-origin frame whose URL starts with `url_prefix`, once its document is complete."""
        # A frame attaches with an empty URL; Target.targetInfoChanged tells its URL once it navigates.
        sessions: dict[str, str] = {}

        def matches(event: dict) -> bool:
            method, params = event.get("method"), event.get("params", {})
            if method == "Target.attachedToTarget":
                sessions[params["targetInfo"]["targetId"]] = params["sessionId"]
            if method in ("Target.attachedToTarget", "Target.targetInfoChanged"):
                info = params["targetInfo"]
                return info["targetId"] in sessions and info.get("url", "").startswith(url_prefix)
            return False
        deadline = time.monotonic() + timeout
        event = self.wait_event(matches, timeout=timeout, waiting_for=f"a frame at {url_prefix}")
        session = sessions[event["params"]["targetInfo"]["targetId"]]
        loaded = f"location.href.startsWith({json.dumps(url_prefix)}) && document.readyState === 'complete'"
        while not self.evaluate(session, loaded):
            if time.monotonic() > deadline:
                raise DevToolsError(f"the frame at {url_prefix} did not finish loading")
            time.sleep(POLL_SECONDS)
        return session

    # ---- reading the rendered document -------------------------------------------------------

    def evaluate(self, session: str, expression: str):
        """The JSON value of a JavaScript expression in the page (works with page scripts disabled)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def _root(self, session: str) -> int:
        # One getDocument per document, since each call discards the node ids handed out before;
        # DOM.documentUpdated says the document was replaced and ids must be asked for afresh.
        held = self._roots.get(session)
        if held is not None and not any(e.get("method") == "DOM.documentUpdated" and e.get("sessionId") == session
                                        for e in self.events[held[1]:]):
            return held[0]
        since = len(self.events)
        root = self.send("DOM.getDocument", {"depth": 0}, session=session)["root"]["nodeId"]
        self._roots[session] = (root, since)
        return root

    def query(self, session: str, selector: str) -> int:
        """The node id of the first element matching `selector`; 0 when none does."""
        return self.send("DOM.querySelector", {"nodeId": self._root(session), "selector": selector},
                         session=session)["nodeId"]

    def outer_html(self, session: str, node: int) -> str:
        return self.send("DOM.getOuterHTML", {"nodeId": node}, session=session)["outerHTML"]

    def box(self, session: str, node: int) -> tuple[int, int]:
        """(width, height) of the element's border box as laid out; DevToolsError if it has no box."""
        model = self.send("DOM.getBoxModel", {"nodeId": node}, session=session)["model"]
        return model["width"], model["height"]

    def fonts(self, session: str, node: int) -> list[dict]:
        """The platform fonts the element's text was drawn with: [{familyName, isCustomFont, glyphCount}]."""
        self.send("DOM.enable", session=session)
        self.send("CSS.enable", session=session)
        return self.send("CSS.getPlatformFontsForNode", {"nodeId": node}, session=session)["fonts"]

    def screenshot(self, session: str, path: str | Path) -> int:
        """A PNG of the tab's viewport written to `path`; returns its size in bytes."""
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return len(data)
