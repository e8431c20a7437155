"""``python -m dashboards.report --storage URI --experiment NAME --factor F [--factor G] [--baseline LEVEL]
[--metric M] [--split val|test] [--format md|latex|csv|json|html] [--adjust holm|bh] [--out FILE]``

The ablation table the explorer shows, for a paper: per level of the factor(s), the mean with its 95% interval and
n, the difference to the baseline with its interval (paired t when repeats pair by seed and fold, else Welch),
the p-value adjusted over the levels shown (Holm by default), the verdict of "the level beats the baseline"
(``platform.statistics.evaluate_claims``: supported, contradicted or inconclusive, Holm over the levels shown),
P(improvement), Hedges' g, and the repeats that would detect the difference at 80% power. Rows whose adjusted p
is below 0.05 are marked. ``html`` is one self-contained page (the table and the figure; it opens offline), every
text from the tables escaped; Markdown escapes ``|``, ``<``, ``>`` and backticks. It reads only the results
tables.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dashboards.reporttable import (  # noqa: F401 (re-exported: the report's table and its forms)
    HEADERS,
    SIGNIFICANT,
    _interval,
    headers,
    render,
    report_table,
    score_column,
)
from dashboards.tables import Catalog, Experiment, ExplorerError

EXIT_USER_ERROR = 2


def report_figures(catalog: Catalog, experiment: Experiment, columns: list[str], score: str, baseline: str | None,
                   order: list[str], adjust: str = "holm") -> list[Any]:
    """The page's figures of one ablation: the bars with their differences, the score against each factor,
    the parameters in parallel coordinates and, when per-case test scores exist, the rank-stability blobs."""
    from dashboards.analysis import level_case_scores, rank_stability
    from dashboards.views.ablation import ablation_bars
    from dashboards.views.curve import objective_curve
    from dashboards.views.parcoords import parallel_coordinates
    from dashboards.views.ranks import rank_blobs

    finished = experiment.trials[experiment.trials["status"] == "TERMINATED"]
    shown = [ablation_bars(finished, columns, score, baseline, mode=experiment.mode_of(score), order=order,
                                   adjust=adjust)]
    shown += [objective_curve(finished, column, experiment.categorical, score, experiment.params,
                                      experiment.is_log_axis(column), order=experiment.levels(column))
              for column in columns]
    shown.append(parallel_coordinates(finished, experiment.params, experiment.categorical, score,
                                              log_axes=experiment.log_axes,
                                              levels=experiment.level_orders)[0])
    metric = score.split("/")[-1] if score.startswith("test/") else None
    if metric:
        cases = catalog.cases(experiment.name, None, "test", [metric])
        if metric in cases:
            scores = level_case_scores(finished, cases, columns, metric)
            ranks = rank_stability(scores, mode=experiment.mode_of(score), resamples=1000)
            if not ranks.empty and ranks["level"].nunique() > 1:
                shown.append(rank_blobs(ranks, f"test {metric} (best networks)", 1000,
                                                int(scores["unit"].nunique())))
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.report", description=__doc__.split("\n\n")[1])
    parser.add_argument("--storage", required=True, help="the sweep's storage (local directory or URI)")
    parser.add_argument("--experiment", required=True, help="the experiment name")
    parser.add_argument("--factor", action="append", required=True, help="a searched axis (repeat for several)")
    parser.add_argument("--baseline", help="the baseline level (default: the spec's explore.baseline)")
    parser.add_argument("--metric", help="the metric (default: the first objective's)")
    parser.add_argument("--split", choices=["val", "test"], default="test",
                        help="test: the test score of the networks best on val (default); val: the best val score")
    parser.add_argument("--format", choices=["md", "latex", "csv", "json", "html"], default="md")
    parser.add_argument("--adjust", choices=["holm", "bh"], default="holm", help="p-value adjustment over levels")
    parser.add_argument("--out", help="write here instead of printing")
    args = parser.parse_args(argv)
    try:
        catalog = Catalog(args.storage)
        experiment = catalog.load(args.experiment)
        score = score_column(experiment, args.metric, args.split)
        table = report_table(experiment, args.factor, args.baseline, score, args.adjust)
        if args.format == "html":

            attrs = table.attrs
            attrs["figures"] = report_figures(catalog, experiment, attrs["columns"], score, attrs["baseline"],
                                              attrs["order"], args.adjust)
        text = render(table, args.format, args.experiment)
    except ExplorerError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.out:
        from platform.outputs import OutputError, write_file

        try:
            write_file(args.out, text)
        except OutputError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"written: {args.out} ({args.format})")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
