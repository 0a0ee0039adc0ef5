"""Plots as server-rendered SVG (no JavaScript, no build step): bars and a heatmap. Each
shape carries a <title> (its value on hover and for screen readers); the page puts the table
behind each plot under it. Colours come from static/reports/reports.css (classes), so the
page's CSP needs no inline styles."""

import math
from html import escape

from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 44


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def bar_chart(
    chart_id: str, title: str, labels: list[str], series: list[tuple], *, unit: str = ""
) -> str:
    """Grouped bars: `series` is [(name, css class, values)], one value per label."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_ceiling(max((v for _, _, values in series for v in values), default=0))
    parts = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for tick in range(5):
        value = top * tick / 4
        y = TOP + plot_h - plot_h * tick / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = min(48.0, max(1.0, group_w * 0.8 / max(len(series), 1)))
    every = max(1, math.ceil(groups / 12))
    for index, label in enumerate(labels):
        x0 = LEFT + index * group_w + (group_w - bar_w * len(series)) / 2
        for position, (name, css, values) in enumerate(series):
            value = values[index]
            height = plot_h * value / top
            x = x0 + position * bar_w
            y = TOP + plot_h - height
            parts.append(
                f'<rect class="bar {css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{height:.1f}" data-value="{value}"><title>{escape(label)} · '
                f"{escape(name)}: {value}{escape(unit)}</title></rect>"
            )
        if index % every == 0:
            cx = LEFT + index * group_w + group_w / 2
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(
        f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def heatmap(
    chart_id: str, title: str, rows: list[str], columns: list[str], matrix: list[list[int]]
) -> str:
    """A weekday × hour grid; a cell's opacity is its share of the busiest cell."""
    left, top, cell_w, cell_h = 44, 22, 27, 24
    width, height = left + cell_w * len(columns) + 4, top + cell_h * len(rows) + 4
    peak = max((v for line in matrix for v in line), default=0) or 1
    parts = [
        f'<svg class="chart heatmap" id="{chart_id}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for c, column in enumerate(columns):
        if c % 3 == 0:
            parts.append(
                f'<text class="axis" x="{left + c * cell_w + cell_w / 2:.1f}" y="{top - 8}" '
                f'text-anchor="middle">{escape(column)}</text>'
            )
    for r, row in enumerate(rows):
        y = top + r * cell_h
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">{escape(row)}</text>'
        )
        for c, column in enumerate(columns):
            value = matrix[r][c]
            opacity = 0.04 + 0.96 * value / peak if value else 0.04
            parts.append(
                f'<rect class="cell" x="{left + c * cell_w + 1}" y="{y + 1}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" rx="3" fill-opacity="{opacity:.2f}" data-value="{value}">'
                f"<title>{escape(row)} {escape(column)}: {value}</title></rect>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))
