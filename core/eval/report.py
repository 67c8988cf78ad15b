"""A sweep's report: one question set under several settings, side by side (docs/eval.md).

`write_report` writes `report.json` (for machines), three plots of the headline score against
a cost (visual tokens, seconds and peak memory per question) and `report.html`, one page with
everything embedded. `report_lines` is the same table as text for the terminal. Each setting is
compared with the best one on the questions both answered, by a paired bootstrap interval.
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vidtt.errors import OptionsError
from vidtt.eval.intervals import paired_difference_ci
from vidtt.eval.run import SCORES

REPORT_JSON, REPORT_HTML = "report.json", "report.html"
LEVEL = 0.95
HEADLINES = {"choice": "accuracy", "grounding": "mIoU", "open": "exact match"}
BEST_MEANS = (
    "the setting with the highest headline score (the first in the sweep's order on a tie); "
    "every other setting's difference from it is its mean minus the best one's over the "
    "questions both answered, with a paired 95% bootstrap interval: an interval that excludes "
    "0 says the two settings differ, one that holds 0 says these questions do not tell them apart"
)
NO_MATPLOTLIB = 'matplotlib is not installed: pip install "vidtt[eval]" for the plots'


@dataclass(frozen=True)
class _Axis:
    """One plot: the cost on its x axis, its file and label, and the cost's scale."""

    key: str
    file: str
    label: str
    scale: float = 1.0


AXES = (
    _Axis("visual_tokens", "score_vs_visual_tokens.png", "mean visual tokens per question"),
    _Axis("seconds", "score_vs_seconds.png", "mean seconds per question"),
    _Axis("peak_memory_bytes", "score_vs_peak_memory.png", "peak memory (MiB)", 1 / 2**20),
)


def headline_kind(points: Sequence[Mapping[str, Any]]) -> str | None:
    """The kind whose score heads the report: choice, else grounding, else open (or None)."""
    for kind in HEADLINES:
        if any(kind in (point.get("scores") or {}) for point in points):
            return kind
    return None


def _headline(scores: Mapping[str, Any], kind: str | None) -> dict[str, Any] | None:
    """The headline score of one setting: value, interval, count and no-answers (None: absent)."""
    if kind is None or kind not in scores:
        return None
    part = scores[kind]
    if kind == "grounding":
        value, ci, count = part["miou"], part.get("miou_ci"), part["count"]
    else:
        share = part["accuracy" if kind == "choice" else "exact"]
        value, ci, count = share["value"], share.get("ci"), share["count"]
    return {"value": value, "ci": ci, "count": count, "no_answer": part.get("no_answer")}


def _comparison(point: Mapping[str, Any], best: Mapping[str, Any] | None) -> dict[str, Any]:
    """`point` against `best` over the question ids both have (mean difference, paired CI)."""
    empty = {"vs": None, "is_best": False, "common": 0, "difference": None, "ci": None}
    if best is None:
        return {**empty, "excludes_zero": None}
    mine, theirs = point.get("outcomes") or {}, best.get("outcomes") or {}
    ids = sorted(set(mine) & set(theirs), key=str)
    result = {**empty, "vs": best["name"], "is_best": point is best, "common": len(ids)}
    if point is best or not ids:
        diff = 0.0 if point is best else None
        return {**result, "difference": diff, "excludes_zero": None}
    a, b = [float(mine[i]) for i in ids], [float(theirs[i]) for i in ids]
    low, high = paired_difference_ci(a, b, level=LEVEL)
    diff = (sum(a) - sum(b)) / len(ids)
    return {**result, "difference": diff, "ci": [low, high], "excludes_zero": low > 0 or high < 0}


def _named(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points with a name, setting, folder, cost and outcomes each (defaults filled in)."""
    if not points:
        raise OptionsError("no settings to report: give the sweep at least one setting")
    named = []
    for number, point in enumerate(points, 1):
        if not isinstance(point.get("scores"), Mapping):
            raise OptionsError(f"setting {number} has no scores: give its scores.json dict")
        named.append(
            {
                **point,
                "name": str(point.get("name") or f"setting {number}"),
                "setting": dict(point.get("setting") or {}),
                "cost": dict(point.get("cost") or {}),
                "outcomes": dict(point.get("outcomes") or {}),
            }
        )
    return named


def report_data(points: Sequence[Mapping[str, Any]], title: str = "") -> dict[str, Any]:
    """`report.json`'s content (without its `plots`): every setting, its score and comparison."""
    named = _named(points)
    kind = headline_kind(named)
    scores = [_headline(point["scores"], kind) for point in named]
    values = {i: score["value"] for i, score in enumerate(scores) if score is not None}
    best = named[max(values, key=values.__getitem__)] if values else None
    rows = []
    for point, score in zip(named, scores):
        folder = point.get("folder")
        rows.append(
            {
                "name": point["name"],
                "setting": point["setting"],
                "folder": folder,
                "scores_path": f"{folder}/{SCORES}" if folder else None,
                "score": score,
                "cost": point["cost"],
                "comparison": _comparison(point, best),
            }
        )
    return {
        "title": title,
        "metric": {"kind": kind, "name": HEADLINES.get(kind or "")},
        "level": LEVEL,
        "best": {"name": best["name"] if best else None, "means": BEST_MEANS},
        "points": rows,
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}"


def _span(ci: Sequence[float] | None) -> str:
    return f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci else ""


def _num(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return "–" if value is None else format(value * scale, fmt)


def _cells(row: Mapping[str, Any]) -> list[str]:
    """A setting's table cells, as text: the same columns in the terminal and the page."""
    score, cost, comp = row["score"] or {}, row["cost"], row["comparison"]
    excludes = comp["excludes_zero"]
    return [
        row["name"],
        _pct(score.get("value")),
        _span(score.get("ci")),
        str(score.get("count", "–")),
        str(score.get("no_answer", "–")),
        _num(cost.get("visual_tokens"), ".0f"),
        _num(cost.get("seconds"), ".2f"),
        _num(cost.get("peak_memory_bytes"), ".0f", 1 / 2**20),
        "best" if comp["is_best"] else f"{_pct(comp['difference'])}",
        _span(comp["ci"]),
        "–" if excludes is None else ("yes" if excludes else "no"),
    ]


COLUMNS = [
    "setting",
    "score %",
    "95% interval",
    "n",
    "no answer",
    "visual tokens",
    "s/question",
    "peak MiB",
    "vs best (pp)",
    "paired 95% interval",
    "excludes 0",
]


def _lines(data: Mapping[str, Any]) -> list[str]:
    """The table of `data` as aligned text lines, with the metric and what best means."""
    rows = [COLUMNS] + [_cells(row) for row in data["points"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    metric = data["metric"]
    lines.append(f"score: {metric['name'] or 'none'} ({metric['kind'] or 'no scores'})")
    lines.append(
        f"best: {data['best']['name'] or 'none'} (the highest score); vs best: the difference "
        f"on the questions both answered, in points, with its paired {LEVEL:.0%} interval"
    )
    return lines


def report_lines(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report's table as plain text lines for the terminal (one line per setting)."""
    return _lines(report_data(points))


def _plot(axis: _Axis, data: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """Plot the headline score (%) against `axis`'s cost into `path`: the settings shown and
    left out (no score or no such cost), or None when none can be shown (nothing written)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def x_of(row: Mapping[str, Any]) -> float | None:
        x = row["cost"].get(axis.key)
        ok = row["score"] is not None and isinstance(x, (int, float)) and math.isfinite(x)
        return float(x) * axis.scale if ok else None

    rows = list(enumerate(data["points"]))  # a setting keeps its colour in every plot
    shown = [(i, row, x) for i, row in rows if (x := x_of(row)) is not None]
    if not shown:
        return None
    figure = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    placed: dict[tuple[float, float], int] = {}  # names already at a point: stacked below
    for i, row, x in shown:
        y, ci = row["score"]["value"] * 100, row["score"]["ci"]
        err = [[max(0.0, y - ci[0] * 100)], [max(0.0, ci[1] * 100 - y)]] if ci else None
        ax.errorbar([x], [y], yerr=err, fmt="o", capsize=4, color=f"C{i % 10}")
        above = placed.get((x, y), 0)
        placed[(x, y)] = above + 1
        ax.annotate(
            row["name"],
            (x, y),
            xytext=(6, 4 - 11 * above),
            textcoords="offset points",
            fontsize=8,
            color=f"C{i % 10}",
            parse_math=False,
        )
    metric = data["metric"]["name"]
    ax.set_xlabel(axis.label)
    ax.set_ylabel(f"{metric} (%), {LEVEL:.0%} interval")
    ax.set_title(f"{metric} against {axis.label}", parse_math=False)
    ax.grid(alpha=0.3)
    ax.margins(x=0.25, y=0.1)  # room for the names beside the markers
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, -2.0), min(high, 102.0))  # a share: never far below 0 or above 100
    left = [row["name"] for row in data["points"] if x_of(row) is None]
    if left:
        note = "left out (no value): " + ", ".join(left)
        figure.supxlabel(note, x=0.01, ha="left", fontsize=7, color="grey", parse_math=False)
    figure.savefig(path, format="png")
    names = [row["name"] for _, row, _ in shown]
    return {"file": path.name, "x": axis.key, "shown": names, "left_out": left}


def _plots(folder: Path, data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The plots written (and None), or none and why not (matplotlib missing: warned)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"vidtt: the report has no plots: {NO_MATPLOTLIB}", file=sys.stderr)
        return [], NO_MATPLOTLIB
    plots = [_plot(axis, data, folder / axis.file) for axis in AXES]
    written = [plot for plot in plots if plot is not None]
    return written, None if written else "no setting has both a score and a cost to plot"


NOT_PLOTTED = "one setting: a sweep (--sweep) draws score against cost"


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%;margin:1em 0;display:block}.note{color:#555;max-width:60em}"
)


def _table_html(data: Mapping[str, Any]) -> str:
    """The settings' table as HTML, each row linking its setting's scores.json."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*COLUMNS, SCORES])
    rows = []
    for row in data["points"]:
        cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in _cells(row))
        target = row["scores_path"]
        link = f'<a href="{html.escape(quote(target))}">{SCORES}</a>' if target else "–"
        rows.append(f"<tr>{cells}<td>{link}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _page(data: Mapping[str, Any], plots: Sequence[Path], no_plots: str | None) -> str:
    """report.html: title, table, what best means, the plots embedded as base64 PNG."""
    title = html.escape(data["title"] or "vidtt eval sweep")
    metric = data["metric"]
    images = [
        f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode("ascii")}">'
        for path in plots
    ]
    why = f'<p class="note">No plots: {html.escape(no_plots)}.</p>' if no_plots else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f"<p>Score: {html.escape(str(metric['name']))} ({html.escape(str(metric['kind']))}), "
        f"in %, with its {LEVEL:.0%} bootstrap interval; costs are means per question "
        f"(peak memory: the largest over the questions).</p>\n{_table_html(data)}\n"
        f'<p class="note">Best: {html.escape(str(data["best"]["name"]))}, '
        f"{html.escape(BEST_MEANS)}. Differences are in percentage points.</p>\n"
        f"{''.join(images)}{why}\n</body></html>\n"
    )


def write_report(
    folder: Path, points: Sequence[Mapping[str, Any]], title: str = "", plots: bool = True
) -> list[Path]:
    """Write report.json, the plots (unless `plots` is false) and report.html of a sweep's
    `points` into `folder`.

    Returns the paths written. Without matplotlib the plots are left out (one warning on
    stderr) and the page says why.
    """
    folder = Path(folder)
    data = report_data(points, title)
    folder.mkdir(parents=True, exist_ok=True)
    data["plots"], data["no_plots"] = _plots(folder, data) if plots else ([], NOT_PLOTTED)
    drawn = [folder / plot["file"] for plot in data["plots"]]
    report = folder / REPORT_JSON
    report.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    page = folder / REPORT_HTML
    page.write_text(_page(data, drawn, data["no_plots"]), encoding="utf-8")
    return [report, *drawn, page]
