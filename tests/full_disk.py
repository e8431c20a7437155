"""Test-only: a results storage that is full while ``$SEGSWEEP_TEST_FULL_DISK`` (a file) exists.

Loaded into a sweep with ``SEGSWEEP_PLUGINS=tests.fault_trainer,tests.full_disk``: every results-table write then
raises ``OSError(ENOSPC)``, as a full disk does, until the test deletes the file (space freed).
"""

from __future__ import annotations

import errno
import os
from typing import Any

from platform.results import ResultsStore

_write_part = ResultsStore._write_part


def _full_or_write(self: ResultsStore, table: str, rows: list[dict[str, Any]]) -> None:
    marker = os.environ.get("SEGSWEEP_TEST_FULL_DISK")
    if marker and os.path.exists(marker):
        raise OSError(errno.ENOSPC, "No space left on device", self.table_dir(table))
    _write_part(self, table, rows)


ResultsStore._write_part = _full_or_write  # type: ignore[method-assign]
