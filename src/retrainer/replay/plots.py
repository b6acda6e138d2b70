"""The policy comparison for a person: the metric over batches per policy, with retrain and
reject markers and the known change points, as a PNG (matplotlib) and as a self-contained HTML
page (plotly, its JavaScript inlined: the page opens without a network), beside a table."""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Sequence
from pathlib import Path

from retrainer.replay.comparison import GroundTruth, PolicyRun, PolicySummary

COLOURS = ("#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
LINESTYLES = ("-", "--", "-", "-", "-.", ":")


def _series(run: PolicyRun, order: Sequence[str], scored: Collection[str]) -> tuple[list[int], list[float]]:
    """The metric line: a gap at batches not judged (rejected by the suite, or without labels)."""
    position = {name: i for i, name in enumerate(order)}
    xs = [position[o.batch] for o in run.outcomes]
    ys = [o.metric if o.batch in scored and o.metric is not None and math.isfinite(o.metric) else math.nan
          for o in run.outcomes]
    return xs, ys


def _marks(run: PolicyRun, order: Sequence[str], what: str) -> tuple[list[int], list[float]]:
    position = {name: i for i, name in enumerate(order)}
    chosen = [o for o in run.outcomes if getattr(o, what)]
    return [position[o.batch] for o in chosen], [o.metric if o.metric is not None else math.nan for o in chosen]


def write_png(runs: Sequence[PolicyRun], order: Sequence[str], scored: Collection[str], metric_name: str,
              path: Path, truth: GroundTruth | None = None, title: str = "") -> Path:
    """Draw the metric over batches per policy, with retrain and reject markers and the ground truth
    (change points and stable stretches), to a PNG at `path`; returns `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(8.0, len(order) * 0.35), 5.0))
    try:
        _shade_truth(axes, order, truth)
        for rank, (colour, run) in enumerate(zip(COLOURS * 3, runs, strict=False)):
            # The first run (the configured policy) is drawn on top of the baselines.
            layer = 10 if rank == 0 else 2
            xs, ys = _series(run, order, scored)
            axes.plot(xs, ys, color=colour, label=run.policy, linewidth=2.4 if rank == 0 else 1.2,
                      linestyle=LINESTYLES[rank % len(LINESTYLES)], zorder=layer)
            rx, ry = _marks(run, order, "retrained")
            axes.scatter(rx, ry, marker="^", s=70 if rank == 0 else 45, color=colour, edgecolors="black",
                         linewidths=0.5, zorder=layer + 1)
            jx, _ = _marks(run, order, "rejected")
            low = min((y for y in ys if not math.isnan(y)), default=0.0)
            axes.scatter(jx, [low] * len(jx), marker="x", s=70, color=colour, zorder=layer + 1)
        axes.set_xticks(range(len(order)), list(order), rotation=90, fontsize=7)
        axes.set_ylabel(f"{metric_name} (prequential)")
        axes.set_title(title or f"{metric_name} per batch by policy  (▲ retrain, ✕ rejected batch)")
        axes.legend(loc="best", fontsize=8)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
    return path


def _shade_truth(axes: object, order: Sequence[str], truth: GroundTruth | None) -> None:
    if truth is None:
        return
    position = {name: i for i, name in enumerate(order)}
    for first, last in truth.stable:
        axes.axvspan(position[first] - 0.5, position[last] + 0.5, color="#2ca02c", alpha=0.07)  # type: ignore[attr-defined]
    for point in truth.change_points:
        axes.axvline(position[point.batch] - 0.5, color="black", linestyle="--", linewidth=0.8)  # type: ignore[attr-defined]


def _figure(runs: Sequence[PolicyRun], order: Sequence[str], scored: Collection[str], metric_name: str,
            truth: GroundTruth | None) -> object:
    import plotly.graph_objects as go

    figure = go.Figure()
    for colour, run in zip(COLOURS * 3, runs, strict=False):
        xs, ys = _series(run, order, scored)
        notes = [f"{o.batch}: {o.note}" if o.note else o.batch for o in run.outcomes]
        figure.add_trace(go.Scatter(x=[order[x] for x in xs], y=ys, mode="lines", name=run.policy,
                                    line={"color": colour, "width": 3 if run is runs[0] else 1.5},
                                    text=notes, hovertemplate="%{text}<br>" + metric_name + " %{y:.4f}",
                                    legendgroup=run.policy))
        rx, ry = _marks(run, order, "retrained")
        figure.add_trace(go.Scatter(x=[order[x] for x in rx], y=ry, mode="markers", name=f"{run.policy}: retrain",
                                    marker={"symbol": "triangle-up", "size": 11, "color": colour,
                                            "line": {"width": 1, "color": "black"}},
                                    legendgroup=run.policy, showlegend=False))
        jx, jy = _marks(run, order, "rejected")
        if jx:
            figure.add_trace(go.Scatter(x=[order[x] for x in jx], y=jy, mode="markers",
                                        name=f"{run.policy}: rejected batch",
                                        marker={"symbol": "x", "size": 12, "color": colour},
                                        legendgroup=run.policy))
    if truth is not None:
        for point in truth.change_points:
            figure.add_vline(x=order.index(point.batch) - 0.5, line_dash="dash", line_width=1)
        for first, last in truth.stable:
            figure.add_vrect(x0=order.index(first) - 0.5, x1=order.index(last) + 0.5, fillcolor="green",
                             opacity=0.07, line_width=0)
    figure.update_layout(title=f"{metric_name} per batch by policy (▲ retrain, ✕ rejected batch)",
                         xaxis_title="batch", yaxis_title=f"{metric_name} (prequential)", template="plotly_white",
                         height=520)
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
    figure; returns `path`."""
    figure = _figure(runs, order, scored, metric_name, truth)
    plot = figure.to_html(full_html=False, include_plotlyjs=True, div_id="policy-plot")  # type: ignore[attr-defined]
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
