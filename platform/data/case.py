"""One subject of one domain in memory: what every dataset yields and every sampler and trainer reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array comparison has no single truth value
class Case:
    """One subject of one domain, loaded into memory."""

    subject: str
    domain: str
    image: np.ndarray  # float32, (C, X, Y, Z), one channel per modality
    label: np.ndarray  # int64, (X, Y, Z)
    split: str | None
    fold: int | None
    affine: np.ndarray  # 4x4 voxel-to-world (mm) of the label and every modality
