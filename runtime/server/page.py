"""The web page at ``/``: one self-contained HTML file and the headers it goes with (the
file is read once, when this module is imported; the rest is pure).

``page.html`` beside this module holds the whole page: one inline ``<style>``, one inline
``<script>``, no external reference of any kind. It is served with a strict
Content-Security-Policy that admits exactly that style and that script by their SHA-256
(computed here from the file, so an edit of the page cannot leave a stale hash), lets the
script talk to this origin only (``connect-src 'self'``), and enforces Trusted Types with
no policy, so the browser itself refuses any HTML parsing from strings (``innerHTML``):
everything the API says is shown as text.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import attrs

__all__ = ["PAGE", "PAGE_FILE", "Page", "content_security_policy", "load"]

PAGE_FILE = Path(__file__).with_name("page.html")

_STYLE = re.compile(r"<style>(.*?)</style>", re.S)
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def content_security_policy(html: str) -> str:
    """The policy of ``html``: its one inline style and its one inline script by hash.

    ValueError when the page does not have exactly one of each (a second block, or one
    with attributes, would be blocked by the browser: better refused here)."""
    styles, scripts = _STYLE.findall(html), _SCRIPT.findall(html)
    if len(styles) != 1 or len(scripts) != 1 or html.count("<script") != 1 \
            or html.count("<style") != 1:
        raise ValueError("the page must hold exactly one <style> and one <script> "
                         f"(found {html.count('<style')} and {html.count('<script')})")
    return "; ".join([
        "default-src 'none'",
        f"script-src 'sha256-{_sha256(scripts[0])}'",
        f"style-src 'sha256-{_sha256(styles[0])}'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ])


@attrs.frozen
class Page:
    """The page's bytes and the headers it is served with."""

    body: bytes
    headers: dict[str, str]


def load(path: Path = PAGE_FILE) -> Page:
    """Read the page and derive its headers (done once, when the module is imported)."""
    html = path.read_text(encoding="utf-8")
    return Page(html.encode(), {
        "content-security-policy": content_security_policy(html),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
        "cache-control": "no-cache",
    })


PAGE = load()
