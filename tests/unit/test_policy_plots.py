"""The policy comparison's PNG and HTML page: the same points in both, no marker without a metric, refused
retrains apart from promoted ones, legend entries for the ground truth, a line style per policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from retrainer.replay import plots
from retrainer.replay.comparison import BatchOutcome, ChangePoint, GroundTruth, PolicyRun, summarise_run

matplotlib.use("Agg")

ORDER = ["b1", "b2", "b3", "b4", "b5", "b6", "b7"]
# b1 trained the first model; b4 and b5 were rejected by the configured policy's suite.
SCORED = {"b2", "b3", "b6", "b7"}
TRUTH = GroundTruth((ChangePoint("b6"),), (("b2", "b5"),))


def _runs() -> list[PolicyRun]:
    ours = PolicyRun("retrainer", [
        BatchOutcome("b2", 0.90), BatchOutcome("b3", 0.91),
        # A lost column: nothing to score, so no metric; the °F batch scores badly.
        BatchOutcome("b4", None, rejected=True), BatchOutcome("b5", 0.40, rejected=True),
        BatchOutcome("b6", 0.60, retrained=True, promoted=True), BatchOutcome("b7", 0.88),
    ])
    # `never` and `drift-trigger` score the same on every batch: the lines lie on each other.
    never = PolicyRun("never", [BatchOutcome(b, m) for b, m in
                                [("b2", 0.90), ("b3", 0.91), ("b4", None), ("b5", 0.40), ("b6", 0.60), ("b7", 0.62)]])
    every_2 = PolicyRun("every-2", [
        BatchOutcome("b2", 0.90), BatchOutcome("b3", 0.91, retrained=True, promoted=True),
        BatchOutcome("b4", None), BatchOutcome("b5", 0.40, retrained=True, promoted=True),
        BatchOutcome("b6", 0.60), BatchOutcome("b7", 0.85, retrained=True, note="retrain failed: no rows"),
    ])
    every_batch = PolicyRun("every-batch", [BatchOutcome(b, m, retrained=True, promoted=True) for b, m in
                                            [("b2", 0.90), ("b3", 0.90), ("b4", None), ("b5", 0.42), ("b6", 0.60),
                                             ("b7", 0.86)]])
    drift = PolicyRun("drift-trigger", [BatchOutcome(o.batch, o.metric) for o in never.outcomes])
    return [ours, never, every_2, every_batch, drift]


def _plotly(page: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The data and layout the page hands to Plotly.newPlot, as the browser gets them."""
    decoder = json.JSONDecoder()
    at = page.index('"policy-plot",', page.index("Plotly.newPlot(")) + len('"policy-plot",')

    def value(start: int) -> tuple[Any, int]:
        while page[start] in " \n\t,":
            start += 1
        return decoder.raw_decode(page, start)

    data, at = value(at)
    layout, _ = value(at)
    return data, layout


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both outputs written, with the matplotlib figure kept (write_png closes it) and the page's plotly JSON."""
    import matplotlib.pyplot as plt

    out = tmp_path_factory.mktemp("policies")
    runs = _runs()
    kept: list[Any] = []
    close = plt.close
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt, "close", lambda figure=None: kept.append(figure))
        png = plots.write_png(runs, ORDER, SCORED, "accuracy", out / "policies.png", TRUTH)
    summaries = [summarise_run(run, ORDER, SCORED, "accuracy", TRUTH) for run in runs]
    page = plots.write_html(runs, summaries, ORDER, SCORED, "accuracy", out / "policies.html", TRUTH)
    data, layout = _plotly(page.read_text(encoding="utf-8"))
    figure = kept[0]
    try:
        yield {"runs": runs, "png": png, "page": page, "axes": figure.axes[0], "data": data, "layout": layout,
               "points": plots.plot_points(runs, ORDER, SCORED)}
    finally:
        close(figure)


def _helper_markers(points: list[plots.RunPoints]) -> set[tuple[str, str, int, float]]:
    return {(p.policy, kind, x, y) for p in points for kind, m in p.markers.items()
            for x, y in zip(m.xs, m.ys, strict=True)}


def _html_markers(data: list[dict[str, Any]]) -> set[tuple[str, str, int, float]]:
    by_label = {label: kind for kind, label in plots.MARKER_LABELS.items()}
    found = set()
    for trace in data:
        if trace.get("mode") == "markers" and trace.get("x") != [None]:
            policy, _, label = trace["name"].partition(": ")
            found |= {(policy, by_label[label], x, y) for x, y in zip(trace["x"], trace["y"], strict=True)}
    return found


def _png_markers(axes: Any) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for collection in axes.collections if hasattr(collection, "get_offsets")
            for x, y in collection.get_offsets()}


def test_the_png_and_the_page_draw_the_markers_the_helper_gives(drawn: dict[str, Any]) -> None:
    expected = _helper_markers(drawn["points"])
    assert expected
    assert _html_markers(drawn["data"]) == expected
    assert _png_markers(drawn["axes"]) == {(float(x), y) for _, _, x, y in expected}
    assert drawn["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_lines_are_the_helpers_in_both_outputs(drawn: dict[str, Any]) -> None:
    html_lines = {t["name"]: t for t in drawn["data"] if t.get("mode") == "lines"}
    png_lines = {line.get_label(): line for line in drawn["axes"].get_lines()}
    for p in drawn["points"]:
        gaps = [y != y for y in p.line.ys]
        assert html_lines[p.policy]["x"] == list(p.line.xs)
        assert [y is None for y in html_lines[p.policy]["y"]] == gaps
        assert [y != y for y in png_lines[p.policy].get_ydata()] == gaps
    # Not judged (rejected by the suite) or without a metric: a gap, for every policy.
    assert all([y != y for y in p.line.ys][2:4] == [True, True] for p in drawn["points"])


def test_a_batch_without_a_metric_gets_no_marker(drawn: dict[str, Any]) -> None:
    points = {p.policy: p for p in drawn["points"]}
    b4 = ORDER.index("b4")
    # The configured policy rejected b4 and every-batch retrained on it: neither has a metric there.
    assert all(b4 not in m.xs for p in drawn["points"] for m in p.markers.values())
    assert b4 not in {x for _, _, x, _ in _html_markers(drawn["data"])}
    assert b4 not in {x for x, _ in _png_markers(drawn["axes"])}
    # With a metric, a rejected batch keeps its marker, at that metric, in both.
    assert points["retrainer"].markers["rejected"].xs == (ORDER.index("b5"),)
    assert points["retrainer"].markers["rejected"].ys == (0.40,)


def test_refused_and_promoted_retrains_are_different_markers(drawn: dict[str, Any]) -> None:
    every_2 = next(p for p in drawn["points"] if p.policy == "every-2")
    assert every_2.markers["promoted"].xs == (ORDER.index("b3"), ORDER.index("b5"))
    assert every_2.markers["refused"].xs == (ORDER.index("b7"),)
    symbols = {t["name"]: t["marker"]["symbol"] for t in drawn["data"] if t.get("mode") == "markers"}
    assert symbols["every-2: retrain, promoted"] != symbols["every-2: retrain, refused"]
    assert symbols["retrain, promoted"] != symbols["retrain, refused"]
    # In the PNG the refused one is hollow: a white face where the promoted one is filled.
    hollow = {int(x) for collection in drawn["axes"].collections
              for (x, _), face in zip(collection.get_offsets(), collection.get_facecolors(), strict=False)
              if tuple(face) == (1.0, 1.0, 1.0, 1.0)}
    assert hollow == {ORDER.index("b7")}


def test_the_legends_name_the_ground_truth_and_the_retrain_outcomes(drawn: dict[str, Any]) -> None:
    shapes = [s for s in drawn["layout"]["shapes"] if s.get("showlegend")]
    assert sorted(s["name"] for s in shapes) == sorted([plots.CHANGE_LABEL, plots.STABLE_LABEL])
    entries = [t["name"] for t in drawn["data"] if t.get("showlegend", True)]
    kinds = [e for e in entries if e in plots.MARKER_LABELS.values()]
    assert kinds == ["retrain, promoted", "retrain, refused", "rejected batch"]
    assert {"retrainer", "never", "every-2", "every-batch", "drift-trigger"} <= set(entries)
    legend = [text.get_text() for text in drawn["axes"].get_legend().get_texts()]
    assert legend == ["retrainer", "never", "every-2", "every-batch", "drift-trigger", "retrain, promoted",
                      "retrain, refused", "rejected batch", plots.STABLE_LABEL, plots.CHANGE_LABEL]


def test_each_policy_has_its_own_line_style_and_the_configured_one_is_on_top(drawn: dict[str, Any]) -> None:
    lines = [t for t in drawn["data"] if t.get("mode") == "lines"]
    assert len({t["line"]["dash"] for t in lines}) == len(lines) == 5
    # The configured policy is drawn last (on top) and widest.
    assert lines[-1]["name"] == "retrainer"
    assert lines[-1]["line"]["width"] > max(t["line"]["width"] for t in lines[:-1])
    png = {line.get_label(): line for line in drawn["axes"].get_lines() if not line.get_label().startswith("_")}
    # The dash pattern as given, before matplotlib scales it by the line width.
    patterns = {name: (line.get_linestyle(), line._unscaled_dash_pattern) for name, line in png.items()}
    assert len(set(patterns.values())) == 5
    assert np.array_equal(png["never"].get_ydata(), png["drift-trigger"].get_ydata(), equal_nan=True)
    assert patterns["never"] != patterns["drift-trigger"]
    assert png["retrainer"].get_zorder() > max(line.get_zorder() for name, line in png.items() if name != "retrainer")
    assert png["retrainer"].get_linewidth() > max(line.get_linewidth() for line in png.values()
                                                  if line is not png["retrainer"])


def test_the_page_stays_self_contained_and_change_lines_sit_at_their_batch(drawn: dict[str, Any]) -> None:
    page = drawn["page"].read_text(encoding="utf-8")
    # plotly.js itself inlined (its source names its CDN as a default for maps, which this figure has none of).
    assert "<script src=" not in page
    assert "Plotly.newPlot" in page
    assert len(page) > 1_000_000
    # The x axis counts every batch of the stream, the initial ones too, as the PNG's does.
    assert drawn["layout"]["xaxis"]["ticktext"] == ORDER
    change = next(s for s in drawn["layout"]["shapes"] if s["type"] == "line")
    assert change["x0"] == ORDER.index("b6") - 0.5
    assert [line.get_xdata()[0] for line in drawn["axes"].get_lines() if line.get_label().startswith("_")] == [
        ORDER.index("b6") - 0.5]


def test_without_ground_truth_there_is_no_truth_legend(tmp_path: Path) -> None:
    runs = _runs()[:2]
    page = plots.write_html(runs, [summarise_run(r, ORDER, SCORED, "accuracy") for r in runs], ORDER, SCORED,
                            "accuracy", tmp_path / "p.html")
    data, layout = _plotly(page.read_text(encoding="utf-8"))
    assert not layout.get("shapes")
    assert [t["name"] for t in data if t.get("showlegend", True)] == ["never", "retrainer", "retrain, promoted",
                                                                      "rejected batch"]
    assert plots.write_png(runs, ORDER, SCORED, "accuracy", tmp_path / "p.png").stat().st_size > 0


def test_a_challenger_into_shadow_and_its_promotion_later_are_their_own_markers(tmp_path: Path) -> None:
    """With promotion.shadow_batches: the retrain that put its challenger in shadow is not drawn as refused, and
    the batch where the shadow promoted it (no retrain there) gets a marker of its own, in both outputs."""
    shadow = PolicyRun("shadow-2", [
        BatchOutcome("b2", 0.90), BatchOutcome("b3", 0.41, retrained=True, shadowed=True),
        BatchOutcome("b4", None), BatchOutcome("b5", 0.40), BatchOutcome("b6", 0.42, promoted=True),
        BatchOutcome("b7", 0.88)])
    points = plots.plot_points([shadow], ORDER, SCORED)
    assert {kind: m.xs for kind, m in points[0].markers.items()} == {"shadow": (ORDER.index("b3"),),
                                                                      "shadow-promoted": (ORDER.index("b6"),)}
    page = plots.write_html([shadow], [summarise_run(shadow, ORDER, SCORED, "accuracy")], ORDER, SCORED, "accuracy",
                            tmp_path / "policies.html")
    data, _ = _plotly(page.read_text(encoding="utf-8"))
    assert {t["name"] for t in data if t.get("showlegend", True)} >= {"retrain, challenger in shadow",
                                                                      "promoted from shadow"}
    figure_path = plots.write_png([shadow], ORDER, SCORED, "accuracy", tmp_path / "policies.png")
    assert figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
