"""Headless Chromium for the web page tests, and a relay that can break the page's streams.

The browser is Debian's ``chromium`` driven by Playwright (never a browser Playwright
downloads). ``Watched`` collects everything a page reports: console messages, uncaught
errors and Content-Security-Policy violations. ``Relay`` is a small HTTP/1.1 relay in front
of ``serve`` (the page is loaded through it, so it is the page's origin): it forwards every
request, and a test can cut the page's open event streams (as a dropped connection does) or
end them with the service's own ``stream_end`` frame (as a slow watcher's stream ends).
"""

from __future__ import annotations

import http.client
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_REASON = ("chromium is not installed (CI installs Debian's chromium: "
               "apt-get install -y chromium in .ci/run)")


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


# every CSP violation the page's document sees (installed before any of the page's scripts)
_CSP_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


class Watched:
    """A page and what it reported: ``console`` (type, text, url), ``errors`` (uncaught)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[tuple[str, str, str]] = []
        self.errors: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str], str | None]] = []
        page.add_init_script(_CSP_WATCH)
        page.on("console", lambda m: self.console.append(
            (m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(
            (r.method, r.url, r.headers, r.post_data)))

    def violations(self) -> list[str]:
        out: list[str] = self.page.evaluate("window.__violations || []")
        return out

    def problems(self, expected: tuple[str, ...] = ()) -> list[str]:
        """Console errors and warnings, uncaught errors and CSP violations; a console
        error whose text contains one of ``expected`` (a status the test caused) is not
        one."""
        out = [f"pageerror: {e}" for e in self.errors]
        for kind, text, url in self.console:
            if kind in ("error", "warning") and not any(x in text for x in expected):
                out.append(f"console {kind}: {text} ({url})")
        out += [f"csp: {v}" for v in self.violations()]
        return out


_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-connection", "content-length", "host", "date", "server"}


class _Stream:
    """One event stream going through the relay."""

    def __init__(self, handler: BaseHTTPRequestHandler, upstream: http.client.HTTPConnection,
                 headers: dict[str, str]) -> None:
        self.handler = handler
        self.upstream = upstream
        self.headers = headers
        self.lock = threading.Lock()
        self.closed = False

    def chunk(self, data: bytes) -> bool:
        with self.lock:
            if self.closed:
                return False
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.handler.wfile.flush()
            return True

    def finish(self, last: bytes = b"") -> None:
        """End the response properly (after ``last``, when given)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if last:
                self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(last), last))
            self.handler.wfile.write(b"0\r\n\r\n")
            self.handler.wfile.flush()
        self._stop_upstream()

    def cut(self) -> None:
        """Close the page's connection mid-response, as a network failure does."""
        with self.lock:
            self.closed = True
            try:
                self.handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._stop_upstream()

    def _stop_upstream(self) -> None:
        sock = self.upstream.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Relay:
    """An HTTP relay to ``upstream`` on 127.0.0.1 (see the module docstring)."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.seen: list[tuple[str, str, dict[str, str]]] = []   # method, path, headers
        self.streams: list[_Stream] = []
        self.lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                relay._forward(self)

            do_POST = do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def event_requests(self) -> list[dict[str, str]]:
        """The headers of every event stream request so far (lower-case names)."""
        return [h for m, p, h in list(self.seen) if m == "GET" and p.split("?")[0]
                .endswith("/events")]

    def cut(self) -> int:
        """Cut every open event stream; how many were open."""
        with self.lock:
            streams, self.streams = self.streams, []
        for s in streams:
            s.cut()
        return len(streams)

    def end(self, frame: bytes) -> int:
        """End every open event stream with ``frame`` (a ``stream_end``); how many."""
        with self.lock:
            streams, self.streams = self.streams, []
        for s in streams:
            s.finish(frame)
        return len(streams)

    def open_streams(self) -> int:
        with self.lock:
            return sum(not s.closed for s in self.streams)

    def close(self) -> None:
        self.cut()
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else None
        headers = {k.lower(): v for k, v in h.headers.items()}
        self.seen.append((h.command, h.path, headers))
        up = http.client.HTTPConnection(self.host, self.port, timeout=600)
        up.request(h.command, h.path, body=body,
                   headers={k: v for k, v in headers.items() if k not in _HOP})
        resp = up.getresponse()
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP:
                h.send_header(k, v)
        if not resp.getheader("content-type", "").startswith("text/event-stream"):
            data = resp.read()
            up.close()
            h.send_header("content-length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
            return
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        stream = _Stream(h, up, headers)
        with self.lock:
            self.streams.append(stream)
        try:
            while data := resp.read1(65536):
                if not stream.chunk(data):
                    break
            stream.finish()
        except (OSError, http.client.HTTPException):  # cut (by the test or the page)
            pass
        finally:
            with self.lock:
                if stream in self.streams:
                    self.streams.remove(stream)
            up.close()
            h.close_connection = True
