"""The pure rendering of reports and run lists: escaping, fences, the chart, the table."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from runtime.report.chart import chart_svg, nice_ceiling
from runtime.report.html import render_html
from runtime.report.markdown import escape_inline, escape_prose, fenced, render_markdown
from runtime.report.model import Entry, TurnStats, build_report
from runtime.report.runs import RunInfo, first_line, runs_table
from runtime.session.records import (
    AssistantRecord,
    SessionEnd,
    SessionStart,
    ToolCallRecord,
    ToolResultRecord,
    UsageRecord,
)


def test_prose_keeps_markdown_but_not_html() -> None:
    """Raw HTML becomes text; code spans and fences are left as they are; an unclosed
    fence is closed."""
    assert escape_prose("a <b>bold</b> & `x<y` end") == "a &lt;b>bold&lt;/b> &amp; `x<y` end"
    assert escape_prose("```\n<div>\n```\n<p>") == "```\n<div>\n```\n&lt;p>"
    assert escape_prose("```py\nif a<b:") == "```py\nif a<b:\n```"
    assert escape_prose("odd ` tick <i>") == "odd ` tick &lt;i>"


@given(st.text(alphabet=st.characters(blacklist_characters="`~")))
def test_prose_without_code_holds_no_raw_tag(text: str) -> None:
    """Text with no code in it comes out with no '<' at all."""
    assert "<" not in escape_prose(text)


@given(st.text())
def test_a_fence_cannot_be_closed_from_inside(text: str) -> None:
    """The fence is longer than every backtick run of the content, which stays verbatim."""
    block = fenced(text)
    fence = block.split("\n", 1)[0]
    assert block == f"{fence}\n{text}\n{fence}"
    assert all(len(run) < len(fence) for run in re.findall(r"`+", text))


@given(st.text())
def test_inline_text_is_one_inert_line(text: str) -> None:
    """One line with no character that Markdown would act on left unescaped."""
    line = escape_inline(text)
    assert "\n" not in line and "<" not in line
    assert not re.search(r"(?<!\\)[|`*_\[\]]", line.replace("\\\\", ""))


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False))
def test_nice_ceiling(x: float) -> None:
    """A round number at least x and less than 2.5 times it (within float error)."""
    top = nice_ceiling(x)
    assert top >= x * (1 - 1e-9) and top <= x * 2.5 * (1 + 1e-9)
    mantissa = top / 10 ** int(f"{top:e}".split("e")[1])
    assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5, 10))


def test_chart_has_a_bar_group_per_turn_and_no_reference() -> None:
    """One group per turn with a tooltip; nothing loaded from anywhere; names escaped."""
    stats = [TurnStats(1, "p<1>", "m", input_tokens=100, output_tokens=20, cost_usd=0.01),
             TurnStats(2, input_tokens=0, output_tokens=0, cost_usd=None)]
    svg = chart_svg(stats)
    assert svg.count('class="turn"') == 2 and "p&lt;1&gt;" in svg and "unpriced" in svg
    assert "href" not in svg and "<script" not in svg
    assert "no turns" in chart_svg([])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_escapes_every_value() -> None:
    """Hostile text in every field stays text: the only script is the report's own."""
    evil = '</div><script>alert(1)</script><img src=x onerror=alert(2)>'
    records = [SessionStart(seq=1, turn=0, task=evil, providers=[evil], model=evil),
               ToolCallRecord(seq=2, turn=1, call_id=evil, name=evil, arguments=evil),
               ToolResultRecord(seq=3, turn=1, call_id=evil, name=evil, content=evil * 200),
               AssistantRecord(seq=4, turn=1, provider=evil, text=evil, stop="stop"),
               UsageRecord(seq=5, turn=1, provider=evil, input_tokens=3, output_tokens=1),
               SessionEnd(seq=6, turn=1, status=evil, message=evil)]
    report = build_report(evil, records, None, {1: [{"message": evil, "kind": evil}]})
    page = render_html(report)
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("script") == 1 and "img" not in parser.tags
    md = render_markdown(report)
    outside_code = re.sub(r"(?ms)^(`{3,})\n.*?\n\1$", "", md)
    assert "<script>" not in outside_code and "<img" not in outside_code
    assert evil in md   # verbatim, inside code fences


def test_report_turn_numbers() -> None:
    """Per-turn numbers add up the usage of the turn; unpriced usage makes the cost
    unknown, not zero."""
    records = [UsageRecord(turn=1, provider="a", input_tokens=10, output_tokens=2,
                           cost_usd=0.5),
               UsageRecord(turn=1, provider="a", input_tokens=5, output_tokens=1,
                           cost_usd=0.25),
               UsageRecord(turn=2, provider="a", input_tokens=7, output_tokens=1,
                           cost_usd=None)]
    stats = build_report("r", records, None, {}).stats
    assert [(s.turn, s.input_tokens, s.output_tokens, s.cost_usd) for s in stats] == [
        (1, 15, 3, 0.75), (2, 7, 1, None)]
    folded = Entry("tool_result", 1, 1, 0.0, "x", "y" * 5000)
    assert folded.folded and not Entry("user", 1, 1, 0.0, "x", "short").folded


def test_runs_table_aligns_and_cuts_the_task() -> None:
    """Columns line up; numbers are right-aligned; the task is its first line, cut."""
    long = "word " * 40
    rows = [RunInfo("a-run", "finished", 0.0, 3, 12345, 0.5, first_line(long)),
            RunInfo("batch/t9", "crashed", None, 12, 7, 0.0, first_line("\n\nsecond\nx"))]
    table = runs_table(rows).splitlines()
    assert table[0].startswith("RUN") and len(table) == 3
    assert table[1].index("finished") == table[2].index("crashed")
    assert table[1].endswith("…") and len(first_line(long)) == 60
    assert table[2].endswith("second") and " - " in table[2]
    assert table[1].index("12,345") + len("12,345") == table[2].index(" 7 ") + 2
