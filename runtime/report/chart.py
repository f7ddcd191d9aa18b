"""A small inline SVG chart of tokens and cost per turn (pure).

Stacked bars: the input and output tokens of each turn (left axis); a line: the turn's
cost (right axis). Each turn carries a ``<title>`` (the browser's tooltip) with its
numbers. Only numbers and escaped text go in; no script, no external reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from .model import TurnStats

__all__ = ["chart_svg", "nice_ceiling"]

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 28, 34
IN_COLOR, OUT_COLOR, COST_COLOR = "#4c78a8", "#f58518", "#2ca02c"


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is >= ``x`` (> 0)."""
    if x <= 0:
        return 1.0
    exp = math.floor(math.log10(x))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10.0 ** exp
        if top >= x * (1 - 1e-12):
            return top
    return 10.0 ** (exp + 1)  # pragma: no cover


def _tokens(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return f"{n:g}"


def chart_svg(stats: Sequence[TurnStats]) -> str:
    """The chart as an ``<svg>`` element (an empty-state text when there are no turns)."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
            f'aria-label="tokens and cost per turn">')
    if not stats:
        return (head + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                'class="empty">no turns</text></svg>')
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_tokens = nice_ceiling(max(s.input_tokens + s.output_tokens for s in stats))
    costs = [s.cost_usd or 0.0 for s in stats]
    top_cost = nice_ceiling(max(costs)) if max(costs) > 0 else 0.01
    slot = plot_w / len(stats)
    bar = max(1.0, slot * 0.7)
    base_y = TOP + plot_h
    out = [head, '<g class="axes" font-size="11">']
    for i in range(5):  # grid and tick labels
        frac = i / 4
        y = base_y - frac * plot_h
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   'class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{_tokens(top_tokens * frac)}</text>')
        out.append(f'<text x="{LEFT + plot_w + 6}" y="{y + 4:.1f}">'
                   f'${top_cost * frac:.4g}</text>')
    every = max(1, math.ceil(len(stats) / 20))
    for i, s in enumerate(stats):
        if i % every == 0 or i == len(stats) - 1:
            x = LEFT + slot * (i + 0.5)
            out.append(f'<text x="{x:.1f}" y="{base_y + 16}" text-anchor="middle">'
                       f'{s.turn}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">turn'
               '</text></g>')
    points = []
    for i, s in enumerate(stats):
        x = LEFT + slot * i + (slot - bar) / 2
        h_in = s.input_tokens / top_tokens * plot_h
        h_out = s.output_tokens / top_tokens * plot_h
        cost = "unpriced" if s.cost_usd is None else f"${s.cost_usd:.6f}"
        tip = escape(f"turn {s.turn}: {s.input_tokens:,} in, {s.output_tokens:,} out, "
                     f"{cost}" + (f" ({s.provider} {s.model})" if s.provider else ""))
        out.append(f'<g class="turn" data-turn="{s.turn}"><title>{tip}</title>'
                   f'<rect class="in" x="{x:.1f}" y="{base_y - h_in:.1f}" width="{bar:.1f}" '
                   f'height="{h_in:.1f}" fill="{IN_COLOR}"/>'
                   f'<rect class="out" x="{x:.1f}" y="{base_y - h_in - h_out:.1f}" '
                   f'width="{bar:.1f}" height="{h_out:.1f}" fill="{OUT_COLOR}"/></g>')
        cy = base_y - (s.cost_usd or 0.0) / top_cost * plot_h
        points.append((LEFT + slot * (i + 0.5), cy))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    out.append(f'<polyline class="cost" points="{path}" fill="none" stroke="{COST_COLOR}" '
               'stroke-width="2"/>')
    out.extend(f'<circle class="cost" cx="{x:.1f}" cy="{y:.1f}" r="2.5" '
               f'fill="{COST_COLOR}"/>' for x, y in points)
    legend = [("input tokens", IN_COLOR), ("output tokens", OUT_COLOR), ("cost", COST_COLOR)]
    lx = LEFT
    for label, color in legend:
        out.append(f'<rect x="{lx}" y="8" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="17" font-size="11">{label}</text>')
        lx += 14 + 7 * len(label) + 18
    out.append("</svg>")
    return "".join(out)
