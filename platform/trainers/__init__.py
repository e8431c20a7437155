"""Trainers, one module per method; importing this package registers them all in ``TRAINERS``."""

from __future__ import annotations

from platform.trainers import advnorm, dualnorm, glua
from platform.trainers.base import TRAINERS, Trainer, TrainerConfig

__all__ = ["TRAINERS", "Trainer", "TrainerConfig", "advnorm", "dualnorm", "glua"]
