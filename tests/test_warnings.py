"""A class whose val Dice is 0 at a trial's end is named: in the trials row's ``warnings`` and its progress line."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from platform.results import WARNINGS_KEY, summary_row, zero_dice_warning


@pytest.mark.parametrize(("last", "expected"), [
    ({"val/dice": 0.6, "val/dice/adult/wm": 0.7, "val/dice/adult/csf": 0.5}, None),
    ({"val/dice": 0.4, "val/dice/adult/wm": 0.0, "val/dice/adult/csf": 0.5, "val/dice/infant/wm": 0.0},
     "val Dice 0 at the end: adult/wm, infant/wm"),
    ({"val/dice/adult": 0.0, "val/dice/adult/gm": 0.2, "train/dice/adult/gm": 0.0, "val/hd95/adult/gm": 0.0},
     None),  # a domain's mean, another split or another metric: not a class's val Dice
    ({"val/dice/ct/liver": float("nan"), "val/dice/ct/spleen": 0}, "val Dice 0 at the end: ct/spleen"),
])
def test_zero_dice_warning_names_each_lost_class(last: dict, expected: str | None) -> None:
    assert zero_dice_warning(last) == expected


def test_the_trials_row_warns_of_the_last_epoch_only() -> None:
    rows = [{"epoch": 1, "val/dice": 0.2, "val/dice/a/csf": 0.0}, {"epoch": 2, "val/dice": 0.5, "val/dice/a/csf": 0.3}]
    assert summary_row(rows, [("val/dice", "max")])[WARNINGS_KEY] is None
    rows[1]["val/dice/a/csf"] = 0.0
    assert summary_row(rows, [("val/dice", "max")])[WARNINGS_KEY] == "val Dice 0 at the end: a/csf"


def test_the_progress_line_names_a_lost_class_at_the_trials_end() -> None:
    from platform.spec import load_spec
    from platform.tuning import ProgressCallback, ResultsCallback
    from tests.conftest import REPO_ROOT

    spec = load_spec(REPO_ROOT / "search_spaces" / "lambda.yaml")
    out = io.StringIO()
    progress = ProgressCallback(spec, 2, stream=out)
    result = {"epoch": 6, "val/dice": 0.4, "val/dice/adult/wm": 0.0, "val/dice/adult/gm": 0.6}
    # The results callback strips the per-class metrics from Tune's copy of the result but leaves the warning.
    ResultsCallback.on_trial_result(SimpleNamespace(
        _configs={}, _epochs={}, _objective_metrics={"val/dice"},
        store=SimpleNamespace(append=lambda *args, **kwargs: None)), 0, [], SimpleNamespace(trial_id="t"), result)
    assert "val/dice/adult/wm" not in result
    trial = SimpleNamespace(trial_id="aaaa", status="TERMINATED", config={"params": {"lambda": 0.1}},
                            last_result=result)
    progress.on_trial_complete(0, [trial], trial)
    assert "completed 6 epochs, WARNING val Dice 0 at the end: adult/wm" in out.getvalue()
