"""Seeds: of the global generators, and stable ones derived from names (Python's ``hash()`` is salted per
process, so it cannot be used)."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process and on every machine."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (data samplers have their own generators)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
