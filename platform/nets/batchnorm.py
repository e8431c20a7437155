"""BatchNorm statistics re-estimated over a chosen set of forwards (detectron2's PreciseBN)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from torch import nn


@contextlib.contextmanager
def cumulative_batchnorm(nets: Iterable[nn.Module]) -> Iterator[None]:
    """Inside the block every ``BatchNorm2d`` of ``nets`` starts from reset running statistics and averages the
    forwards run in train mode with equal weight (momentum None); each keeps its momentum after the block."""
    norms = [m for net in nets for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the block's batches
    try:
        yield
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
