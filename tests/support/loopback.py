"""A loopback HTTP endpoint that records every POST and answers from a script of statuses (hubs, CDN APIs)."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.servers import serve_in_thread


class RecordingServer:
    """Each POST becomes `record(path, headers, body)`, appended to `requests`; answers 2xx unless scripted."""

    def __init__(self, statuses=(), ok: int = 200, path: str = ""):
        self.statuses, self.ok = list(statuses), ok
        self.requests: list = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.requests.append(server.record(self.path, self.headers, body))
                    status = server.statuses.pop(0) if server.statuses else server.ok
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base + path
        self.thread = serve_in_thread(self.server)

    def record(self, path: str, headers, body: bytes):
        return path, dict(headers), body

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
