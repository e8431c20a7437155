"""``python -m platform.bench [NAME ...] [--quick] [--out FILE]``: run benchmarks (all by default), print
each one's table and targets, and write every figure with the machine description to a JSON file.

Targets are reported, not enforced: the exit code is 0 unless a benchmark crashed (1) or a name is unknown (2).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from platform.bench import BENCHMARKS

EXIT_USER_ERROR = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m platform.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all): "
                                                                 f"{', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="reduced sizes (each under 2 minutes; CI smoke test)")
    parser.add_argument("--out", default="bench-results.json", help="JSON results file (default %(default)s)")
    return parser.parse_args(argv)


def summary_text(document: dict[str, Any]) -> str:
    from platform.bench.report import table_text

    rows = []
    for name, entry in document["benchmarks"].items():
        if "error" in entry:
            rows.append([name, "-", "-", "CRASHED", entry.get("seconds")])
            continue
        if "skipped" in entry:
            rows.append([name, "-", "-", "skipped", entry.get("seconds")])
            continue
        for target in entry["targets"]:
            rows.append([name, f"{target['figure']} {target['op']} {target['value']:g}", target["measured"],
                         bool(target["met"]), entry["seconds"]])
    return table_text(["benchmark", "target", "measured", "met", "seconds"], rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(repr(n) for n in unknown)}; valid names: "
              f"{', '.join(BENCHMARKS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)

    from platform.bench.harness import quiet_environment
    from platform.bench.report import BenchSkipped, machine, result_text, versions, write_json

    quiet_environment()
    out = Path(args.out)
    document: dict[str, Any] = {
        "command": " ".join(["python", "-m", "platform.bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "benchmarks": {},
    }
    crashed = False
    for name in names:
        started = time.monotonic()
        module = importlib.import_module(f"platform.bench.{name}")
        reason = getattr(module, "unavailable", lambda: None)()
        if reason:
            print(reason, flush=True)
            document["benchmarks"][name] = {"skipped": reason, "seconds": time.monotonic() - started}
            write_json(out, document)
            continue
        print(f"-- running {name}{' (quick)' if args.quick else ''} ...", flush=True)
        try:
            result = module.run(quick=args.quick)
        except BenchSkipped as skipped:
            print(skipped, flush=True)
            document["benchmarks"][name] = {"skipped": str(skipped), "seconds": time.monotonic() - started}
            write_json(out, document)
            continue
        except Exception as exc:
            crashed = True
            traceback.print_exc()
            document["benchmarks"][name] = {"error": f"{type(exc).__name__}: {exc}",
                                            "seconds": time.monotonic() - started}
        else:
            result.seconds = time.monotonic() - started
            document["benchmarks"][name] = result.to_json()
            print(result_text(result), flush=True)
        # Written after every benchmark: a crash or an interrupt keeps what was measured.
        write_json(out, document)
    if all("skipped" in entry for entry in document["benchmarks"].values()):
        return 0  # nothing ran: the reasons, one line each, are the whole output
    print()
    print(summary_text(document))
    print(f"\nresults: {out}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
