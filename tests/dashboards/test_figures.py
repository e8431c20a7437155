"""The explorer's figures at scale: what they draw beyond their point limits is an honest, stated reduction
(a seeded sample, or means per bin computed over every trial), and their axes carry titles plotly.js reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboards import figures
from dashboards.views import ablation, pareto
from dashboards.views import curve as curve_view
from dashboards.views import parcoords as parcoords_view


def _title(figure: dict) -> str:
    """A figure's title as one line (long titles are wrapped with <br>)."""
    return figure["layout"]["title"]["text"].replace("<br>", " ")


def _trials(count: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam = 10 ** rng.uniform(-2, 1, count)
    return pd.DataFrame({"trial_id": [f"t{i}" for i in range(count)], "config/lambda": lam,
                         "config/arch": rng.choice(["a", "b"], count), "seed": np.arange(count) % 3,
                         "score": 0.8 - 0.05 * np.log10(lam) ** 2 + rng.normal(0, 0.01, count),
                         "cost": rng.uniform(0, 1, count), "config_key": [f"c{i // 3}" for i in range(count)]})


def test_parallel_coordinates_draw_a_seeded_sample_beyond_the_limit_and_say_so(monkeypatch) -> None:
    monkeypatch.setattr(parcoords_view, "PARCOORDS_LINES", 50)
    trials = _trials(400)
    figure, _ = parcoords_view.parallel_coordinates(trials, ["config/lambda"], set(), "score")
    drawn = figure["data"][0]["dimensions"][0]["values"]
    assert len(drawn) == 50 and figure["layout"]["meta"] == {"trials": 400, "drawn": 50, "selected": 0}
    assert "a uniform sample of 50 of 400 trials drawn; brushes filter all" in _title(figure)
    again, _ = parcoords_view.parallel_coordinates(trials, ["config/lambda"], set(), "score")
    assert np.array_equal(drawn, again["data"][0]["dimensions"][0]["values"])  # seeded: the same lines
    score_axis = figure["data"][0]["dimensions"][1]
    assert score_axis["range"] == [trials["score"].min(), trials["score"].max()]  # spans every trial, not the sample
    small, _ = parcoords_view.parallel_coordinates(trials.head(40), ["config/lambda"], set(), "score")
    assert small["layout"]["meta"]["drawn"] == 40 and "sample" not in _title(small)


def test_equal_scores_get_a_centred_colour_scale() -> None:
    trials = _trials(10).assign(score=0.5)
    line = parcoords_view.parallel_coordinates(trials, ["config/lambda"], set(), "score")[0]["data"][0]["line"]
    assert line["cmin"] < 0.5 < line["cmax"]


def test_curve_beyond_the_group_limit_shows_means_per_bin_over_every_trial(monkeypatch) -> None:
    monkeypatch.setattr(curve_view, "CURVE_GROUPS", 20)
    monkeypatch.setattr(figures, "SCATTER_POINTS", 100)
    trials = _trials(900)
    figure = curve_view.objective_curve(trials, "config/lambda", set(), "score", ["config/lambda"], log_x=True)
    dots, means = figure["data"]
    assert len(dots["x"]) == 100 and figure["layout"]["meta"] == {"trials": 900, "drawn": 100}
    assert means["name"] == "mean per bin (95% t-interval)" and sum(means["customdata"][:, 0]) == 900
    # The first bin by hand: equal-width bins of log10(lambda), its trials' mean and t-interval.
    position = np.log10(trials["config/lambda"].to_numpy())
    edges = np.linspace(position.min(), position.max(), curve_view.CURVE_BINS + 1)
    first = trials["score"].to_numpy()[position < edges[1]]
    assert means["y"][0] == pytest.approx(first.mean())
    half = stats.t.ppf(0.975, first.size - 1) * first.std(ddof=1) / np.sqrt(first.size)
    assert means["error_y"]["array"][0] == pytest.approx(half)
    title = _title(figure)
    assert "means per bin of lambda over all 900 trials" in title and "dots: a uniform sample of 100" in title
    assert figure["layout"]["xaxis"]["title"] == {"text": "lambda"} and figure["layout"]["xaxis"]["type"] == "log"


def test_curve_of_a_categorical_parameter_groups_by_level(monkeypatch) -> None:
    monkeypatch.setattr(curve_view, "CURVE_GROUPS", 20)
    trials = _trials(300)
    means = curve_view.objective_curve(trials, "config/arch", {"config/arch"}, "score", ["config/arch"])["data"][1]
    assert list(means["x"]) == ["a", "b"]
    assert means["y"][0] == pytest.approx(trials.loc[trials["config/arch"] == "a", "score"].mean())


def test_pareto_draws_the_whole_front_and_a_sample_of_the_rest(monkeypatch) -> None:
    monkeypatch.setattr(figures, "SCATTER_POINTS", 30)
    trials = _trials(600)
    figure = pareto.pareto(trials, "score", "cost", "max", "min", ["config/lambda"])
    points, front = figure["data"]
    on_front = np.array(points["marker"]["color"]) == figures.RED
    assert len(points["x"]) == 30 and on_front.sum() == len(front["x"])  # every front point is drawn
    assert "a uniform sample of 30 of 200 configurations drawn, the front whole" in _title(figure)


@pytest.mark.parametrize("build", [
    lambda t: curve_view.objective_curve(t, "config/lambda", set(), "score", ["config/lambda"]),
    lambda t: pareto.pareto(t, "score", "cost", "max", "min", ["config/lambda"]),
    lambda t: ablation.ablation_bars(t, ["config/arch"], "score", "a"),
])
def test_axis_titles_are_objects_plotly_js_draws(build) -> None:
    layout = build(_trials(60))["layout"]
    for axis in ("xaxis", "yaxis", "xaxis2"):
        if axis in layout and "title" in layout[axis]:
            assert isinstance(layout[axis]["title"], dict) and layout[axis]["title"]["text"]
    assert "title" in layout["xaxis"]


def test_selected_trials_are_highlighted_in_parcoords_curve_and_pareto(monkeypatch) -> None:
    monkeypatch.setattr(parcoords_view, "PARCOORDS_LINES", 50)
    trials = _trials(400)
    chosen = ["t7", "t301"]
    figure, _ = parcoords_view.parallel_coordinates(trials, ["config/lambda"], set(), "score", selected=chosen,
                                             log_axes={"config/lambda": True})
    line, drawn = figure["data"][0]["line"], figure["data"][0]["dimensions"][0]["values"]
    assert figure["layout"]["meta"]["selected"] == 2 and "the 2 selected in red" in _title(figure)
    assert line["color"].sum() == 2 and len(drawn) == 50  # both kept in the sample, flagged 1 among 0s
    lambdas = np.log10(trials.set_index("trial_id").loc[chosen, "config/lambda"])  # a log axis, as recorded
    assert np.allclose(sorted(drawn[line["color"] == 1]), sorted(lambdas))
    curve = curve_view.objective_curve(trials, "config/lambda", set(), "score", ["config/lambda"], selected=chosen)
    (ring,) = [t for t in curve["data"] if t["name"].startswith("selected")]
    assert list(ring["customdata"]) == chosen and ring["name"] == "selected (2)"
    front = pareto.pareto(trials, "score", "cost", "max", "min", ["config/lambda"], selected=chosen)
    (ring,) = [t for t in front["data"] if t["name"].startswith("selected")]
    assert sorted(ring["customdata"][:, 0]) == sorted(trials.set_index("trial_id").loc[chosen, "config_key"])
    assert list(line["color"][-2:]) == [1.0, 1.0]  # drawn last: on top of the others
    small, _ = parcoords_view.parallel_coordinates(trials.head(40), ["config/lambda"], set(), "score", selected=["t3"])
    assert small["layout"]["meta"]["drawn"] == 40 and "sample" not in _title(small)
    assert list(small["data"][0]["line"]["color"]).index(1.0) == 39
    plain = curve_view.objective_curve(trials, "config/lambda", set(), "score", ["config/lambda"])
    assert not any(t["name"].startswith("selected") for t in plain["data"])


def test_trials_stopped_early_are_drawn_apart_and_named_in_the_titles() -> None:
    trials = _trials(30).assign(status="TERMINATED", stopped_early=[i % 5 == 0 for i in range(30)])
    curve = curve_view.objective_curve(trials, "config/lambda", set(), "score", ["config/lambda"])
    names = [t["name"] for t in curve["data"]]
    # Their own series, drawn over the means (never hidden under them) and never joined to the line.
    assert names[:3] == ["trial", "mean per configuration (95% t-interval)", "stopped early by the scheduler (6)"]
    assert len(curve["data"][0]["x"]) == 24 and sum(curve["data"][1]["customdata"][:, 0]) == 24
    assert "6 trials stopped early shown apart, not in the means" in _title(curve)
    bars = ablation.ablation_bars(trials, ["config/arch"], "score", None)
    assert "includes 6 trials stopped early" in _title(bars)
    completed = curve_view.objective_curve(trials[~trials["stopped_early"]], "config/lambda", set(), "score",
                                        ["config/lambda"])
    assert "stopped early" not in _title(completed) and len(completed["data"]) == 2


@pytest.mark.parametrize(("column", "meta", "expected"), [
    ("test/best/dice", None, "Dice (test, best-on-val checkpoint)"),
    ("best/val/dice", {"dice": {"kind": "overlap"}}, "Dice (val, best epoch)"),
    ("test/best/hd95", None, "HD95 (mm; test, best-on-val checkpoint)"),
    ("last/val/hd95/ct", {"hd95": {"kind": "distance"}}, "HD95 (mm; val, last epoch; ct)"),
    ("test/last/asd", None, "ASD (mm; test, last epoch)"),
    ("best/val/surface", {"surface": {"kind": "distance"}}, "surface (mm; val, best epoch)"),  # the declared kind
    ("wall_s", None, "wall time (s)"),
])
def test_axis_titles_are_words_with_units(column: str, meta: dict | None, expected: str) -> None:
    from dashboards.views.labels import score_label

    assert score_label(column, meta) == expected


def test_no_interval_is_drawn_below_two_repeats_and_the_title_says_why() -> None:
    assert figures.interval_errors([0.5, 0.6, 0.7], [0.6, 0.6, float("nan")], [3, 1, 4]) == [
        pytest.approx(0.1), figures.NO_BAR, figures.NO_BAR]
    trials = pd.DataFrame({"config/arch": ["a", "a", "a", "b"], "score": [0.5, 0.6, 0.7, 0.9], "seed": [0, 1, 2, 0],
                           "trial_id": ["t0", "t1", "t2", "t3"], "status": "TERMINATED"})
    bars = ablation.ablation_bars(trials, ["config/arch"], "score", "a")
    assert bars["data"][0]["error_x"]["array"][1] == figures.NO_BAR  # b: one repeat
    assert "none drawn for the 1 with n < 2" in _title(bars)


def test_differences_are_coloured_by_verdict_never_by_sign() -> None:
    rng = np.random.default_rng(0)
    rows = [{"config/arch": level, "seed": seed, "score": base + rng.normal(0, 0.01), "trial_id": f"{level}{seed}",
             "status": "TERMINATED"}
            for level, base in (("a", 0.5), ("better", 0.6), ("worse", 0.4), ("same", 0.5)) for seed in range(6)]
    figure = ablation.ablation_bars(pd.DataFrame(rows), ["config/arch"], "score", "a")
    colours = dict(zip(figure["data"][1]["y"], figure["data"][1]["marker"]["color"], strict=True))
    verdicts = dict(zip(figure["data"][1]["y"], figure["data"][1]["customdata"][:, 5], strict=True))
    assert verdicts["better"] == "supported" and colours["better"] == figures.VERDICT_COLOURS["supported"]
    assert verdicts["worse"] == "contradicted" and colours["worse"] == figures.VERDICT_COLOURS["contradicted"]
    # A positive or negative mean difference without a clear verdict is grey.
    assert colours["same"] == figures.VERDICT_COLOURS.get(verdicts["same"], figures.GREY)
    assert verdicts["same"] != "supported" and colours["same"] != figures.VERDICT_COLOURS["supported"]
    assert "> 0 is better" in figure["layout"]["xaxis2"]["title"]["text"]


@pytest.mark.parametrize(("count", "step"), [(3, 1), (8, 1), (9, 2), (40, 5), (1000, 200)])
def test_history_ticks_are_whole_trial_numbers(count: int, step: int) -> None:
    assert figures.integer_ticks(count) == {"tick0": 0, "dtick": step, "tickformat": "d"}


def test_a_split_of_one_subject_says_so() -> None:
    from dashboards.views.cases import case_scatter

    one = pd.DataFrame({"domain": ["ct", "ct"], "subject": ["s1", "s1"], "a": [0.5, 0.6], "b": [0.7, 0.8]})
    assert "ONE subject" in _title(case_scatter(one, float("nan"), "dice", "A", "B"))
    two = one.assign(subject=["s1", "s2"])
    assert "ONE subject" not in _title(case_scatter(two, float("nan"), "dice", "A", "B"))
