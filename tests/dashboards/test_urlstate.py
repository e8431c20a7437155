"""The page state in the URL: what is written reads back the same, defaults stay out, and a hand-edited link
opens with what it can read."""

from __future__ import annotations

from pathlib import Path

import dash
import pytest

from dashboards.app import Explorer
from dashboards.bench import build_experiment
from dashboards.views.grid import SHOWN_STATUSES
from dashboards.views.urlstate import STATE, decode, encode, read

STATE_VALUES = {"experiment": "lambda sweep", "status": ["TERMINATED", "STOPPED_EARLY"], "score": "best/val/dice",
                "param": "config/lambda", "factors": ["config/lambda", "config/norm"],
                "brushes": {"config/lambda": {"ranges": [[0.01, 0.1]]}, "config/norm": {"labels": ["bn"]}},
                "filters": {"wall_s": {"filterType": "number", "type": "lessThan", "filter": 60}},
                "selected": [{"trial_id": "t000001"}, {"trial_id": "t000007"}]}


def test_the_state_round_trips_through_the_query() -> None:
    query = encode(STATE_VALUES)
    assert query.startswith("?") and " " not in query
    assert decode(query) == STATE_VALUES


@pytest.mark.parametrize(("values", "query"), [
    ({"status": list(SHOWN_STATUSES), "score": None, "factors": [], "brushes": {}}, ""),  # defaults and blanks
    ({"selected": [{"no id": 1}]}, ""),
])
def test_defaults_and_empty_values_stay_out_of_the_url(values: dict, query: str) -> None:
    assert encode(values) == query


@pytest.mark.parametrize(("search", "expected"), [
    ("?score=last%2Fval%2Fdice&unknown=1", {"score": "last/val/dice"}),
    ("?brushes=%7Bnot+json&factors=%5B%22a%22%5D", {"factors": ["a"]}),  # the broken brushes are skipped
    ("?status=%22TERMINATED%22&selected=7", {}),  # the wrong shapes are skipped
    ("", {}),
])
def test_a_hand_edited_link_opens_with_what_it_can_read(search: str, expected: dict) -> None:
    assert decode(search) == expected


def test_the_page_reads_the_url_once_and_ignores_an_unknown_experiment(tmp_path: Path) -> None:
    build_experiment(tmp_path, "synthetic", trials=6, epochs=2, seeds=1, images=0)
    explorer = Explorer(str(tmp_path))
    first = read(explorer, encode({"experiment": "synthetic", "score": "best/val/dice"}), False)
    assert first[list(STATE).index("experiment")] == "synthetic" and first[-1] is True
    assert first[list(STATE).index("param")] is dash.no_update
    assert read(explorer, encode({"experiment": "elsewhere"}), False)[0] is dash.no_update
    assert all(value is dash.no_update for value in read(explorer, "?score=x", True))
