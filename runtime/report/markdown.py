"""The report as Markdown (pure: a ``Report`` in, text out).

Everything from the run is escaped: prose (user and assistant text) keeps its Markdown but
not raw HTML (``&`` and ``<`` become entities outside code), an unclosed code fence is
closed where the message ends, and tool arguments, results and errors go in code fences
longer than any backtick run they hold. Long texts fold in ``<details>``.
"""

from __future__ import annotations

import re
from html import escape

from .cells import cost, seconds, when
from .model import Entry, Report, TurnStats

__all__ = ["escape_inline", "escape_prose", "fenced", "render_markdown"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE = re.compile(r"[\\`*_\[\]<>&|#!]")


def escape_inline(text: str) -> str:
    """One line of plain text, inert in Markdown (table cells included)."""
    line = " ".join(text.split())

    def repl(m: re.Match[str]) -> str:
        c = m.group(0)
        return {"<": "&lt;", ">": "&gt;", "&": "&amp;"}.get(c, "\\" + c)

    return _INLINE.sub(repl, line)


def _outside_code(line: str) -> str:
    """``&`` and ``<`` as entities, except inside inline code spans."""
    parts = re.split(r"(`+)", line)
    out: list[str] = []
    open_run: str | None = None
    for part in parts:
        if part.startswith("`"):
            if open_run is None:
                open_run = part
            elif part == open_run:
                open_run = None
            out.append(part)
        elif open_run is None:
            out.append(part.replace("&", "&amp;").replace("<", "&lt;"))
        else:
            out.append(part)
    if open_run is not None:  # an unmatched backtick run is literal text: escape after it
        text = "".join(out)
        cut = text.rfind(open_run)
        head, tail = text[:cut + len(open_run)], text[cut + len(open_run):]
        return head + tail.replace("&", "&amp;").replace("<", "&lt;")
    return "".join(out)


def escape_prose(text: str) -> str:
    """A message's Markdown without raw HTML, its code fences closed."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):].strip():
                fence = None
        elif m:
            fence = m.group(1)
            out.append(line)
        else:
            out.append(_outside_code(line))
    if fence is not None:
        out.append(fence)
    return "\n".join(out)


def fenced(text: str, lang: str = "") -> str:
    """``text`` verbatim in a code fence no backtick run inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def _stats_table(stats: list[TurnStats]) -> list[str]:
    rows = ["| turn | provider | model | requests | errors | input | output | cache read | "
            "cost | latency s | ttft s | status |",
            "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in stats:
        est = " (est.)" if s.estimated else ""
        rows.append(f"| {s.turn} | {escape_inline(s.provider)} | {escape_inline(s.model)} | "
                    f"{s.requests} | {s.errors} | {s.input_tokens:,}{est} | "
                    f"{s.output_tokens:,}{est} | {s.cache_read_tokens:,} | {cost(s.cost_usd)} | "
                    f"{seconds(s.latency)} | {seconds(s.ttft)} | {escape_inline(s.status)} |")
    return rows


def _meta(e: Entry) -> str:
    items = [f"{escape_inline(k)}: {escape_inline(v)}" for k, v in e.meta.items() if v]
    return " · ".join(items)


def _body(e: Entry, *, prose: bool) -> str:
    if not e.text:
        return ""
    block = escape_prose(e.text) if prose else fenced(e.text)
    if e.folded or e.kind == "reasoning":
        summary = escape(f"{e.title} ({len(e.text):,} characters)")
        return f"<details><summary>{summary}</summary>\n\n{block}\n\n</details>"
    return block


_ICON = {"tool_call": "→ ", "tool_result": "← ", "rejected": "✗ ", "error": "⚠ "}


def _entry(e: Entry) -> str:
    head = f"**{_ICON.get(e.kind, '')}{escape_inline(e.title)}**"
    meta = _meta(e)
    if meta:
        head += f" · {meta}"
    body = _body(e, prose=e.kind in ("user", "assistant", "partial", "compaction"))
    return head + ("\n\n" + body if body else "")


def render_markdown(report: Report) -> str:
    """The whole report (see the module docstring)."""
    r, t = report, report.totals
    lines = [f"# Run {escape_inline(r.run_id)}", "",
             "| | |", "| --- | --- |",
             f"| status | {escape_inline(r.status)}"
             + (f" (exit {r.exit_code})" if r.exit_code is not None else "") + " |",
             f"| started | {when(r.started_at)} |", f"| ended | {when(r.ended_at)} |",
             f"| turns | {r.turns} |",
             f"| tokens | {t.get('total_tokens', 0):,} (in {t.get('input_tokens', 0):,}, out "
             f"{t.get('output_tokens', 0):,}, cache read {t.get('cache_read_tokens', 0):,}) |",
             f"| cost | {cost(t.get('cost_usd'))} |",
             f"| retries | {r.retries} |", f"| compactions | {r.compactions} |"]
    for name, p in r.providers.items():
        n = p["requests"]
        lines.append(f"| provider {escape_inline(name)} | {n} request{'s' * (n != 1)}, "
                     f"{p['tokens']['total']:,} tokens, {cost(p['cost_usd'])} |")
    if r.message:
        lines += ["", f"> {escape_inline(r.message)}"]
    lines += ["", "## Turns", "", *_stats_table(r.stats), "", "## Conversation"]
    turn = -1
    for e in r.entries:
        if e.turn != turn and e.kind not in ("user", "session"):
            turn = e.turn
            lines += ["", f"### Turn {turn}" if turn else "### Before the first turn"]
        lines += ["", _entry(e)]
    return "\n".join(lines) + "\n"
