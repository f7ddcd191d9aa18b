"""The report as one self-contained HTML file (pure: a ``Report`` in, text out).

Inline CSS, an inline SVG chart (``chart``) and a few lines of inline script (expand or
fold every long entry); no external reference of any kind. A Content-Security-Policy
forbids every fetch and allows only this script, by its hash, so even text that slipped
through escaping could not run. Every value from the run goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from .cells import cost, seconds, when
from .chart import chart_svg
from .model import Entry, Report, TurnStats

__all__ = ["SCRIPT", "render_html"]

CSS = """
:root { color-scheme: light dark; --bg: #fff; --fg: #1d1d1f; --muted: #6e6e73;
  --line: #d2d2d7; --card: #f5f5f7; --ok: #1a7f37; --warn: #9a6700; --err: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --bg: #161618; --fg: #e8e8ed;
  --muted: #a1a1a6; --line: #3a3a3c; --card: #222226; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 24px; background: var(--bg);
  color: var(--fg); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 18px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 22px 0 8px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
table.facts td:first-child { color: var(--muted); width: 160px; }
.entry { border-left: 3px solid var(--line); background: var(--card); margin: 8px 0;
  padding: 6px 10px; border-radius: 4px; }
.entry.user { border-color: #4c78a8; } .entry.assistant { border-color: #8e44ad; }
.entry.ok { border-color: var(--ok); } .entry.warn { border-color: var(--warn); }
.entry.error { border-color: var(--err); }
.head { font-weight: 600; } .meta { color: var(--muted); font-size: 12px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 6px 0 2px;
  font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.prose { white-space: pre-wrap; word-break: break-word; margin: 6px 0 2px; }
summary { cursor: pointer; color: var(--muted); }
svg.chart { width: 100%; max-width: 760px; height: auto; display: block; }
.chart text { fill: var(--muted); } .chart .grid { stroke: var(--line); stroke-width: 1; }
.status-finished { color: var(--ok); } .status-crashed, .status-error,
.status-provider_failed { color: var(--err); }
button { font: inherit; margin-right: 6px; }
"""

SCRIPT = """
document.getElementById("expand").addEventListener("click", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
document.getElementById("fold").addEventListener("click", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = false; });
});
"""


def _hash(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _facts(r: Report) -> str:
    t = r.totals
    duration = (r.ended_at - r.started_at) if r.started_at and r.ended_at else None
    rows = [("status", f'<span class="status-{escape(r.status)}">{escape(r.status)}</span>'
             + (f" (exit {r.exit_code})" if r.exit_code is not None else "")),
            ("started", escape(when(r.started_at))), ("ended", escape(when(r.ended_at))),
            ("duration", "-" if duration is None else f"{duration:.1f} s"),
            ("turns", str(r.turns)),
            ("tokens", f"{t.get('total_tokens', 0):,} (in {t.get('input_tokens', 0):,}, "
                       f"out {t.get('output_tokens', 0):,}, cache read "
                       f"{t.get('cache_read_tokens', 0):,})"),
            ("cost", escape(cost(t.get("cost_usd")))),
            ("retries", str(r.retries)), ("compactions", str(r.compactions))]
    for name, p in r.providers.items():
        rows.append((f"provider {escape(name)}",
                     f"{p['requests']} request{'s' * (p['requests'] != 1)}, "
                     f"{p['tokens']['total']:,} tokens, "
                     f"{escape(cost(p['cost_usd']))}"))
    if r.message:
        rows.append(("message", escape(r.message)))
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _stats(stats: list[TurnStats]) -> str:
    head = ("<tr><th class=n>turn</th><th>provider</th><th>model</th>"
            "<th class=n>requests</th><th class=n>errors</th><th class=n>input</th>"
            "<th class=n>output</th><th class=n>cache read</th><th class=n>cost</th>"
            "<th class=n>latency s</th><th class=n>ttft s</th><th>status</th></tr>")
    rows = []
    for s in stats:
        est = " (est.)" if s.estimated else ""
        rows.append(
            f'<tr data-turn="{s.turn}"><td class=n>{s.turn}</td><td>{escape(s.provider)}</td>'
            f"<td>{escape(s.model)}</td><td class=n>{s.requests}</td>"
            f"<td class=n>{s.errors}</td><td class=n>{s.input_tokens:,}{est}</td>"
            f"<td class=n>{s.output_tokens:,}{est}</td><td class=n>{s.cache_read_tokens:,}</td>"
            f"<td class=n>{escape(cost(s.cost_usd))}</td><td class=n>{seconds(s.latency)}</td>"
            f"<td class=n>{seconds(s.ttft)}</td><td>{escape(s.status)}</td></tr>")
    return f'<table class="turns">{head}{"".join(rows)}</table>'


def _entry(e: Entry) -> str:
    classes = f"entry {e.kind} {e.level}"
    meta = " · ".join(f"{escape(k)}: {escape(v)}" for k, v in e.meta.items() if v)
    head = (f'<div class="head">{escape(e.title)}</div>'
            + (f'<div class="meta">{meta}</div>' if meta else ""))
    body = ""
    if e.text:
        tag = "div" if e.kind in ("user", "assistant", "partial") else "pre"
        cls = ' class="prose"' if tag == "div" else ""
        inner = f"<{tag}{cls}>{escape(e.text)}</{tag}>"
        if e.folded or e.kind == "reasoning":
            body = (f"<details><summary>{escape(e.title)} ({len(e.text):,} characters)"
                    f"</summary>{inner}</details>")
        else:
            body = inner
    return f'<div class="{escape(classes)}" data-seq="{e.seq}">{head}{body}</div>'


def render_html(report: Report) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    r = report
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
           f"script-src 'sha256-{_hash(SCRIPT)}'")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Run {escape(r.run_id)}</title><style>{CSS}</style></head><body>",
             f"<h1>Run {escape(r.run_id)}</h1>", _facts(r),
             "<h2>Tokens and cost per turn</h2>", chart_svg(r.stats),
             "<h2>Turns</h2>", _stats(r.stats),
             '<h2>Conversation</h2><p><button id="expand" type="button">expand all</button>'
             '<button id="fold" type="button">fold all</button></p>']
    turn = -1
    for e in r.entries:
        if e.turn != turn and e.kind not in ("user", "session"):
            turn = e.turn
            parts.append(f"<h3>Turn {turn}</h3>" if turn else "<h3>Before the first turn</h3>")
        parts.append(_entry(e))
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"
