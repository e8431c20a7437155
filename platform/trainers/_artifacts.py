"""The pictures half of the base trainer: each evaluated case's middle slice as four panels, and the val cases'
volumes for the explorer's slice viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class ArtifactWriting:
    """Mixed into ``Trainer``: pictures of ``last_eval`` (per evaluated case: "case", "pred" and the panels)."""

    ARTIFACT_KIND: str
    last_eval: list[dict[str, Any]]
    class_names: list[str]
    num_classes: int

    @staticmethod
    def first_per_domain(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first evaluated item (``item["case"]``) of each domain, for one picture per domain."""
        firsts: dict[str, dict[str, Any]] = {}
        for item in items:
            firsts.setdefault(item["case"].domain, item)
        return list(firsts.values())

    def artifact_panel(self, item: dict[str, Any]) -> np.ndarray:
        """The second panel of an evaluated case's picture (what the method made of the input)."""
        return item["case"].image[0]

    def save_artifacts(self, out_dir: Path, split: str = "val") -> list[dict[str, str]]:
        """Pictures of the last evaluation (the middle slice: input | ``artifact_panel`` | prediction | ground
        truth): for ``val``, of each domain's first case; for ``test``, of every case, so a per-case comparison can
        show any subject. Rows of ``path``, ``kind`` (the panels' names), ``domain``, ``subject``, ``split`` and
        ``legend`` (JSON: each class's overlay colour). The val cases also get their volumes (kind ``volume``:
        input, prediction, truth) for the explorer's slice viewer."""
        import json as _json

        from platform.images import VOLUME_SUFFIX, legend, save_grid, save_volume

        colours = _json.dumps(legend(self.class_names))
        items = self.first_per_domain(self.last_eval) if split == "val" else self.last_eval
        rows = []
        for item in items:
            case = item["case"]
            prefix = "" if split == "val" else f"{split}-"
            path = out_dir / f"{prefix}{case.domain}_{case.subject}.png"
            save_grid(path, case.image[0], self.artifact_panel(item), item["pred"], case.label, self.num_classes)
            rows.append({"path": str(path), "kind": self.ARTIFACT_KIND, "domain": case.domain,
                         "subject": case.subject, "split": split, "legend": colours})
            if split == "val":
                volume = save_volume(path.with_suffix(VOLUME_SUFFIX), case.image[0], item["pred"], case.label)
                rows.append({"path": str(volume), "kind": "volume", "domain": case.domain, "subject": case.subject,
                             "split": split, "legend": colours})
        return rows
