"""The policy comparison for a person: the metric over batches per policy, with retrain and
reject markers and the known change points, as a PNG (matplotlib) and as a self-contained HTML
page (plotly, its JavaScript inlined: the page opens without a network), beside a table.

Both outputs draw what `plot_points` computes, so the PNG and the page show the same points."""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retrainer.replay.comparison import BatchOutcome, GroundTruth, PolicyRun, PolicySummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLOURS = ("#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class LineStyle:
    """One dash pattern, as plotly names it and as matplotlib draws it."""

    plotly: str
    matplotlib: str | tuple[float, tuple[float, ...]]


# A policy per pattern: baselines often score alike (`never` and `drift-trigger` when no drift fires),
# and a pattern with gaps lets the line underneath show through the one on top. The matplotlib patterns
# follow plotly's (in line widths), so a policy looks the same in the PNG and on the page.
LINESTYLES = (
    LineStyle("solid", "-"),
    LineStyle("dash", (0.0, (3.0, 3.0))),
    LineStyle("dot", (0.0, (1.0, 1.5))),
    LineStyle("dashdot", (0.0, (3.0, 1.0, 1.0, 1.0))),
    LineStyle("longdash", (0.0, (5.0, 5.0))),
    LineStyle("longdashdot", (0.0, (5.0, 2.0, 1.0, 2.0))),
)


def _style(rank: int) -> LineStyle:
    # Solid is the configured policy's alone, however many baselines there are.
    return LINESTYLES[0] if rank == 0 else LINESTYLES[1 + (rank - 1) % (len(LINESTYLES) - 1)]


def _width(rank: int) -> float:
    # Baselines drawn earlier (underneath) are wider, so they show at the edges of a later one on the same values.
    return 3.0 if rank == 0 else max(1.2, 2.4 - 0.3 * (rank - 1))


MarkerKind = Literal["promoted", "refused", "rejected", "shadow", "shadow-promoted"]
MARKER_KINDS: tuple[MarkerKind, ...] = ("promoted", "refused", "rejected", "shadow", "shadow-promoted")
MARKER_LABELS: dict[MarkerKind, str] = {"promoted": "retrain, promoted", "refused": "retrain, refused",
                                        "rejected": "rejected batch", "shadow": "retrain, challenger in shadow",
                                        "shadow-promoted": "promoted from shadow"}
STABLE_LABEL = "stable stretch (ground truth)"
CHANGE_LABEL = "known change (ground truth)"
# The legend swatches of the marker kinds stand for every policy, so they take no policy's colour.
NEUTRAL = "#444444"
STABLE_COLOUR, STABLE_OPACITY = "#2ca02c", 0.12


@dataclass(frozen=True)
class Points:
    """Points on the plot: x is the batch's position in the stream's order, y the metric (NaN: a gap)."""

    xs: tuple[int, ...] = ()
    ys: tuple[float, ...] = ()
    # Per point, what a hover shows: the batch and the outcome's note.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunPoints:
    """What one policy's run draws: its line, its markers per kind, and its style."""

    policy: str
    # 0 is the configured policy: drawn on top, thickest.
    rank: int
    colour: str
    style: LineStyle
    width: float
    line: Points
    markers: dict[MarkerKind, Points] = field(default_factory=dict)


def _value(metric: float | None) -> float | None:
    return metric if metric is not None and math.isfinite(metric) else None


def _kinds(outcome: BatchOutcome) -> list[MarkerKind]:
    kinds: list[MarkerKind] = []
    if outcome.retrained:
        kinds.append("shadow" if outcome.shadowed else "promoted" if outcome.promoted else "refused")
    elif outcome.promoted:  # a challenger in shadow since an earlier retrain
        kinds.append("shadow-promoted")
    if outcome.rejected:
        kinds.append("rejected")
    return kinds


def plot_points(runs: Sequence[PolicyRun], order: Sequence[str], scored: Collection[str]) -> list[RunPoints]:
    """Per run (the first is the configured policy), the points both the PNG and the HTML page draw.

    The line has a gap at batches not judged (rejected by the suite, or without labels) or without a
    finite metric. A marker sits at the metric its run measured on the batch, judged or not (a policy that
    retrains on a broken batch still scored the model on it); a batch without a finite metric gets no
    marker at all, in either output, since any height given to it would read as a measurement."""
    position = {name: i for i, name in enumerate(order)}
    drawn = []
    for rank, run in enumerate(runs):
        xs, ys, notes = [], [], []
        marks: dict[MarkerKind, tuple[list[int], list[float], list[str]]] = {k: ([], [], []) for k in MARKER_KINDS}
        for o in run.outcomes:
            value = _value(o.metric)
            note = f"{o.batch}: {o.note}" if o.note else o.batch
            xs.append(position[o.batch])
            ys.append(value if value is not None and o.batch in scored else math.nan)
            notes.append(note)
            if value is None:
                continue
            for kind in _kinds(o):
                mx, my, mnote = marks[kind]
                mx.append(position[o.batch])
                my.append(value)
                mnote.append(f"{MARKER_LABELS[kind]} at {note}")
        drawn.append(RunPoints(
            policy=run.policy, rank=rank, colour=COLOURS[rank % len(COLOURS)],
            style=_style(rank), width=_width(rank), line=Points(tuple(xs), tuple(ys), tuple(notes)),
            markers={k: Points(tuple(x), tuple(y), tuple(n)) for k, (x, y, n) in marks.items() if x},
        ))
    return drawn


def _drawing_order(drawn: Sequence[RunPoints]) -> list[RunPoints]:
    # Later is on top in both libraries: the configured policy last.
    return sorted(drawn, key=lambda d: d.rank == 0)


def _present(drawn: Sequence[RunPoints]) -> list[MarkerKind]:
    return [k for k in MARKER_KINDS if any(k in d.markers for d in drawn)]


def write_png(runs: Sequence[PolicyRun], order: Sequence[str], scored: Collection[str], metric_name: str,
              path: Path, truth: GroundTruth | None = None, title: str = "") -> Path:
    """Draw the metric over batches per policy, with retrain and reject markers and the ground truth
    (change points and stable stretches), to a PNG at `path`; returns `path`. The points are those of
    `plot_points`: a batch without a metric gets no marker."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    drawn = plot_points(runs, order, scored)
    figure, axes = plt.subplots(figsize=(max(8.0, len(order) * 0.35) + 2.5, 5.0))
    try:
        _shade_truth(axes, order, truth)
        lines: dict[str, Any] = {}
        for d in _drawing_order(drawn):
            top = d.rank == 0
            (lines[d.policy],) = axes.plot(d.line.xs, d.line.ys, color=d.colour, label=d.policy,
                                           linewidth=d.width, linestyle=d.style.matplotlib,
                                           zorder=5 if top else 3)
        for d in _drawing_order(drawn):
            # Markers above every line, so the configured policy's thick line hides no baseline's retrain.
            layer, size = (9, 80) if d.rank == 0 else (7, 50)
            for kind, points in d.markers.items():
                if kind == "promoted":
                    axes.scatter(points.xs, points.ys, marker="^", s=size, color=d.colour, edgecolors="black",
                                 linewidths=0.6, zorder=layer)
                elif kind == "refused":
                    axes.scatter(points.xs, points.ys, marker="^", s=size, facecolors="white", edgecolors=d.colour,
                                 linewidths=1.6, zorder=layer + 1)
                elif kind == "shadow":
                    axes.scatter(points.xs, points.ys, marker="D", s=size * 0.7, facecolors="white",
                                 edgecolors=d.colour, linewidths=1.6, zorder=layer + 1)
                elif kind == "shadow-promoted":
                    axes.scatter(points.xs, points.ys, marker="D", s=size * 0.7, color=d.colour, edgecolors="black",
                                 linewidths=0.6, zorder=layer)
                else:
                    axes.scatter(points.xs, points.ys, marker="x", s=size, color=d.colour, linewidths=1.6,
                                 zorder=layer + 1)
        handles = [lines[d.policy] for d in drawn]
        swatches = {
            "promoted": Line2D([], [], linestyle="none", marker="^", markersize=8, color=NEUTRAL,
                               markeredgecolor="black"),
            "refused": Line2D([], [], linestyle="none", marker="^", markersize=8, markerfacecolor="white",
                              markeredgecolor=NEUTRAL, markeredgewidth=1.6),
            "rejected": Line2D([], [], linestyle="none", marker="x", markersize=8, color=NEUTRAL,
                               markeredgewidth=1.6),
            "shadow": Line2D([], [], linestyle="none", marker="D", markersize=6, markerfacecolor="white",
                             markeredgecolor=NEUTRAL, markeredgewidth=1.6),
            "shadow-promoted": Line2D([], [], linestyle="none", marker="D", markersize=6, color=NEUTRAL,
                                      markeredgecolor="black"),
        }
        for kind in _present(drawn):
            swatches[kind].set_label(MARKER_LABELS[kind])
            handles.append(swatches[kind])
        if truth is not None and truth.stable:
            handles.append(Patch(facecolor=STABLE_COLOUR, alpha=STABLE_OPACITY, label=STABLE_LABEL))
        if truth is not None and truth.change_points:
            handles.append(Line2D([], [], color="black", linestyle="--", linewidth=0.8, label=CHANGE_LABEL))
        axes.set_xticks(range(len(order)), list(order), rotation=90, fontsize=7)
        axes.set_xlim(-0.5, len(order) - 0.5)
        axes.set_ylabel(f"{metric_name} (prequential)")
        axes.set_title(title or f"{metric_name} per batch by policy")
        # Outside the axes: inside, "best" still covers some batches once there are a dozen entries.
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def _shade_truth(axes: Axes, order: Sequence[str], truth: GroundTruth | None) -> None:
    if truth is None:
        return
    position = {name: i for i, name in enumerate(order)}
    for first, last in truth.stable:
        axes.axvspan(position[first] - 0.5, position[last] + 0.5, color=STABLE_COLOUR, alpha=STABLE_OPACITY,
                     zorder=0)
    for point in truth.change_points:
        axes.axvline(position[point.batch] - 0.5, color="black", linestyle="--", linewidth=0.8, zorder=1)


def _plotly_marker(kind: MarkerKind, colour: str, size: int) -> dict[str, Any]:
    if kind == "promoted":
        return {"symbol": "triangle-up", "color": colour, "size": size, "line": {"width": 1, "color": "black"}}
    if kind == "refused":
        return {"symbol": "triangle-up-open", "color": colour, "size": size, "line": {"width": 2}}
    if kind == "shadow":
        return {"symbol": "diamond-open", "color": colour, "size": size - 2, "line": {"width": 2}}
    if kind == "shadow-promoted":
        return {"symbol": "diamond", "color": colour, "size": size - 2, "line": {"width": 1, "color": "black"}}
    return {"symbol": "x", "color": colour, "size": size}


def _figure(runs: Sequence[PolicyRun], order: Sequence[str], scored: Collection[str], metric_name: str,
            truth: GroundTruth | None) -> Any:
    import plotly.graph_objects as go

    drawn = plot_points(runs, order, scored)
    figure = go.Figure()
    for d in _drawing_order(drawn):
        figure.add_trace(go.Scatter(x=list(d.line.xs), y=list(d.line.ys), mode="lines", name=d.policy,
                                    line={"color": d.colour, "width": d.width, "dash": d.style.plotly},
                                    text=list(d.line.notes), hovertemplate="%{text}<br>" + metric_name + " %{y:.4f}",
                                    legendrank=1 + d.rank))
    present = _present(drawn)
    for d in _drawing_order(drawn):
        for kind, points in d.markers.items():
            # Grouped by kind, not by policy: the kind's legend entry shows or hides it for every policy.
            figure.add_trace(go.Scatter(x=list(points.xs), y=list(points.ys), mode="markers",
                                        name=f"{d.policy}: {MARKER_LABELS[kind]}", text=list(points.notes),
                                        hovertemplate="%{text}<br>" + metric_name + " %{y:.4f}",
                                        marker=_plotly_marker(kind, d.colour, 13 if d.rank == 0 else 10), legendgroup=kind, showlegend=False))
    for number, kind in enumerate(present):
        # A legend entry alone: x None draws nothing, the policies' own traces carry the points.
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=MARKER_LABELS[kind],
                                    marker=_plotly_marker(kind, NEUTRAL, 10), legendgroup=kind, showlegend=True,
                                    legendrank=100 + number, hoverinfo="skip"))
    if truth is not None:
        for number, (first, last) in enumerate(truth.stable):
            figure.add_vrect(x0=order.index(first) - 0.5, x1=order.index(last) + 0.5, fillcolor=STABLE_COLOUR,
                             opacity=STABLE_OPACITY, line_width=0, layer="below", name=STABLE_LABEL, legendgroup="stable",
                             showlegend=number == 0, legendrank=200)
        for number, point in enumerate(truth.change_points):
            figure.add_vline(x=order.index(point.batch) - 0.5, line_dash="dash", line_width=1, line_color="black",
                             name=CHANGE_LABEL, legendgroup="change", showlegend=number == 0, legendrank=201)
    # Numbers on the x axis, batch names as tick labels: a category axis would start at the first batch a
    # run has (after the initial ones), shifting the change lines away from the batch they name.
    figure.update_layout(title=f"{metric_name} per batch by policy", xaxis_title="batch",
                         xaxis={"tickmode": "array", "tickvals": list(range(len(order))), "ticktext": list(order),
                                "range": [-0.5, len(order) - 0.5]},
                         yaxis_title=f"{metric_name} (prequential)", template="plotly_white", height=520)
    return figure


def summary_rows(summaries: Sequence[PolicySummary], with_truth: bool) -> tuple[list[str], list[list[str]]]:
    """The comparison table, as the CLI prints it and the page shows it."""
    header = ["policy", f"mean {summaries[0].metric_name}" if summaries else "mean metric", "retrains",
              "promotions", "retrains on rejected data"]
    if with_truth:
        header += ["detection delay (batches)", "missed changes", "false retrains"]
    rows = []
    for s in summaries:
        row = [s.policy, "-" if s.mean_metric is None else f"{s.mean_metric:.4f}", str(s.retrains),
               str(s.promotions), str(s.retrains_on_rejected)]
        if with_truth:
            delays = ", ".join("-" if d is None else str(d) for d in s.detection_delays.values()) or "-"
            row += [delays, str(s.missed_changes), "-" if s.false_retrains is None else str(s.false_retrains)]
        rows.append(row)
    return header, rows


def write_html(runs: Sequence[PolicyRun], summaries: Sequence[PolicySummary], order: Sequence[str],
               scored: Collection[str], metric_name: str, path: Path, truth: GroundTruth | None = None, title: str = "Policy comparison",
               notes: Sequence[str] = ()) -> Path:
    """Write the comparison as a self-contained HTML page at `path`: the table, `notes`, then the plotly
    figure; returns `path`. The points are those of `plot_points`, as in the PNG: a batch without a metric
    gets no marker."""
    figure = _figure(runs, order, scored, metric_name, truth)
    plot = figure.to_html(full_html=False, include_plotlyjs=True, div_id="policy-plot")
    header, rows = summary_rows(summaries, truth is not None)
    table = "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
    table += "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    table += "</tbody></table>"
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>
</head><body><h1>{html.escape(title)}</h1>
{table}
<ul>{items}</ul>
{plot}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
