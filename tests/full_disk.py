"""Test-only: a results storage that fills up after ``$SEGSWEEP_TEST_FULL_AFTER_WRITES`` writes.

Loaded into a sweep with ``SEGSWEEP_PLUGINS=tests.fault_trainer,tests.full_disk``: once that many results-table
parts are written, every further write raises ``OSError(ENOSPC)``, as a full disk does. Counting writes (rather than
waiting for the sweep to reach some point) makes the disk fill at the same place however fast the machine is; a
run without the variable (space freed) writes normally.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from platform.results import ResultsStore

_write_part = ResultsStore._write_part


_written = 0


def _full_or_write(self: ResultsStore, table: str, rows: list[dict[str, Any]]) -> None:
    global _written
    room = os.environ.get("SEGSWEEP_TEST_FULL_AFTER_WRITES")
    if room is not None and _written >= int(room):
        raise OSError(errno.ENOSPC, "No space left on device", self.table_dir(table))
    _write_part(self, table, rows)
    _written += 1


ResultsStore._write_part = _full_or_write  # type: ignore[method-assign]
