"""Performance benchmarks of the platform: ``python -m platform.bench [NAME ...] [--quick] [--out FILE]``.

Every benchmark measures the platform against a baseline timed in the same run (these machines are noisy) and
reports ratios with their targets; none asserts a time. Modules: ``overhead``, ``step``, ``data``, ``search``,
``scale``, ``drivers``, ``gpu`` (one benchmark each, each with ``run(quick) -> BenchResult``, and optionally
``unavailable() -> str | None``, why it cannot run here), ``report`` (result model, machine description,
tables, JSON), ``harness`` (local Ray, sweeps, interleaved timing) and ``fixed_work`` (a benchmark-only trainer
of fixed, known work, registered when that module is imported).
"""

from __future__ import annotations

# Run order and the valid names of the command line; modules are imported only when run (they pull in Ray).
BENCHMARKS = ("overhead", "step", "data", "search", "scale", "drivers", "gpu")
