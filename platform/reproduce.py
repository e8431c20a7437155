"""``python -m platform.reproduce [NAME ...] [--quick] [--storage URI] [--out DIR] [--read] [--save-reference]``,
``--check REFERENCE.json [NAME ...] [--save-check]``, ``--readme``: the papers' tables beside the measured ones.

Each spec of ``search_spaces/paper/`` (the brain phantom; a table is named by the spec's stem) and of
``search_spaces/paper/mni/`` (the same tables on real anatomy, ``dataset: mni``; named ``mni/<stem>``) carries a
``paper:`` block (:class:`platform.spec.PaperTable`): its rows (which trials measure each, and the paper's number)
and the orderings the paper reports. For every spec this runs its sweeps (one per distinct ``run`` override of its
rows), or reads them when they already finished, then prints per row the paper's value and the measured mean with
its 95% Student-t interval over repeats (seed, fold) and n, per claim its verdict (``supported``, ``contradicted``,
``inconclusive``, ``not measured`` or ``invalid``; Holm-adjusted over the table's claims,
``platform.statistics.evaluate_claims``) with the difference (paired by repeat; Welch when the repeats do not pair)
and its intervals, and every row's value per repeat. It writes the same as Markdown (``reproduce.md``), JSON
(``reproduce.json``: per table, keyed by its name, ``rows`` and ``claims``) and one self-contained HTML page with
the figures, claims coloured by verdict (``reproduce.html``). A table whose spec shares its ``name:`` with another
paper spec of either folder is refused before anything runs, even alone: its sweeps would write the other's
experiments.

``--quick`` runs every sweep with ``--smoke`` sizes and two seeds under its own experiment names (ending in
``-smoke``): about a minute per table, to check the machinery; its numbers mean nothing. ``--read`` reads the full
size's experiments, ``--read --quick`` the smoke ones; the heading says which. Results on the phantom are not
expected to equal the papers' numbers: the directions and the significant gaps are the point.

Every run and check pins torch's CPU kernels to AVX2 (``SEGSWEEP_CPU_KERNELS=native`` lifts it), so a table made on
one x86-64 host reproduces bit for bit on another. Every output records its provenance (:mod:`platform.provenance`:
code version, library versions, CPU and its kernels, GPU, the command) in the Markdown and HTML header and, with
``quick``, in each table's JSON, so one table's JSON is a reference. ``--save-reference`` writes it to
``search_spaces/paper/reference/<NAME>.json`` (``reference/mni/<stem>.json`` for ``mni/<stem>``); ``--check
REFERENCE.json [NAME ...]`` reruns the tables from a clean cache and storage and reports every row whose values per
repeat differ and every environment difference (``--save-check`` records that outcome in the reference file);
``--readme`` regenerates the measured tables of docs/fidelity.md from the committed references of both folders
(:mod:`platform.reference`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from platform.papertables import (  # re-exported: the command's building blocks
    EXIT_USER_ERROR,
    html,
    json_text,
    markdown,
    measure,
    name_clashes,
    paper_names,
    plan_table,
    run_sweeps,
    shared_experiments,
    shared_ray,
    spec_path,
    table_result,
    unknown_names_message,
)
from platform.provenance import provenance
from platform.provenance import summary as provenance_summary
from platform.specfile import SpecError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*",
                        help="tables: spec stems of search_spaces/paper/ (the phantom), mni/<stem> for those of "
                             "search_spaces/paper/mni/ (real anatomy) (default: every table of both)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke sizes and two seeds, as '-smoke' experiments: checks the machinery")
    parser.add_argument("--storage", help="where the sweeps write and are read (default: each spec's storage)")
    parser.add_argument("--out", help="directory of reproduce.md/.json/.html (default: <storage>/reproduce)")
    parser.add_argument("--read", action="store_true",
                        help="only read sweeps that already ran (full size; with --quick the smoke ones); run nothing")
    parser.add_argument("--check", metavar="REFERENCE.json",
                        help="rerun the named tables (default: the reference's) from a clean cache and storage and "
                             "report every row whose per-repeat values differ from the reference, and the "
                             "environment differences; exit 0 when none differs, 1 otherwise, 2 for a bad file")
    parser.add_argument("--save-check", action="store_true",
                        help="with --check: append the check's outcome (provenance, seconds, differing rows) to each "
                             "checked table's 'checks' in REFERENCE.json; --readme shows the latest")
    parser.add_argument("--save-reference", action="store_true",
                        help="also write each table to search_spaces/paper/reference/<NAME>.json "
                             "(reference/mni/<stem>.json for mni/<stem>)")
    parser.add_argument("--readme", action="store_true",
                        help="regenerate docs/fidelity.md's measured tables from search_spaces/paper/reference/; "
                             "run nothing")
    args = parser.parse_args(argv)
    from platform import reference
    from platform.provenance import cpu_kernel_choice, pin_cpu_kernels

    try:  # before any kernel runs here, and before Ray's workers start: they inherit it
        pin_cpu_kernels(cpu_kernel_choice())
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR

    if args.readme:
        try:
            changed = reference.write_readme()
        except reference.ReferenceError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"{reference.README} {'updated' if changed else 'already up to date'} from {reference.REFERENCE_DIR}")
        return 0
    if args.save_check and not args.check:
        print("error: --save-check records the outcome of a check; give it with --check REFERENCE.json",
              file=sys.stderr)
        return EXIT_USER_ERROR
    if args.check:
        return reference.check(Path(args.check), args.names, save=args.save_check)
    available = paper_names()
    names = list(dict.fromkeys(args.names)) or available  # a name given twice is one table
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"error: {unknown_names_message(unknown, available)}", file=sys.stderr)
        return EXIT_USER_ERROR
    started = time.monotonic()
    try:
        tables = [plan_table(spec_path(name), args.quick, args.storage) for name in names]
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    shared = name_clashes(names) or shared_experiments(tables)
    if shared:  # checked before anything runs: two tables' trials in one experiment would be read as both
        print(f"error: {'; '.join(shared)}", file=sys.stderr)
        return EXIT_USER_ERROR
    problems: list[str] = []
    from platform.localray import HeadStartError

    try:
        with shared_ray(tables, args.read) as head:
            for table in tables:
                problems += run_sweeps(table, args.quick, args.storage, args.read, head)
                measure(table)
    except HeadStartError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    results = {table.stem: table_result(table) for table in tables}
    record = provenance()
    for result in results.values():  # each table carries what made it, so one table's JSON is a reference
        result.update(provenance=record, quick=args.quick)
    wall = time.monotonic() - started
    size = ("smoke size (--quick: the '-smoke' experiments, 2 seeds; the numbers mean nothing)" if args.quick
            else "full size")
    header = (f"{size}{', read from finished sweeps (--read)' if args.read else ''}; "
              f"{time.strftime('%Y-%m-%d')}; {wall:.0f} s. Measured: test split, networks of the epoch best on val. "
              f"Provenance: {provenance_summary(record)}.")
    text = markdown(results, header)
    print(text)
    from platform.storage import is_uri

    storage = args.storage or tables[0].spec.storage
    out = Path(args.out) if args.out else Path("reproduce") if is_uri(storage) else Path(storage) / "reproduce"
    from platform.outputs import OutputError, write_files

    try:
        write_files(out, {"reproduce.md": text, "reproduce.json": json_text(results),
                          "reproduce.html": html(results, header)})
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"written: {out}/reproduce.md, reproduce.json, reproduce.html")
    if args.save_reference:
        for path in reference.save_references(results):
            print(f"reference written: {path}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
