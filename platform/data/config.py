"""The data section of a sweep spec (``data:``), validated before any trial starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DataConfig(BaseModel):
    """Which dataset a trial uses, how it is split, and how patches are drawn from it."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        "phantom",
        description="a registered dataset: 'phantom' (embedded brain phantom), 'mni' (embedded, from the MNI152 "
        "template), 'abdomen' (embedded abdominal CT-like, 9 classes), all generated on first use, or 'manifest' "
        "(real NIfTI files)",
    )
    domains: list[str] = Field(
        default_factory=lambda: ["infant", "adult"],
        description="Phantom domains to generate, or the manifest domains to use (empty list: all of them).",
    )
    train_domains: list[str] | None = Field(
        None, description="domains whose training subjects (and labels) train the networks; default: all of domains"
    )
    eval_domains: list[str] | None = Field(
        None, description="domains whose val and test subjects are scored (val/dice is their mean); default: all"
    )
    subjects_per_domain: int = Field(8, ge=2, le=10_000, description="Phantom only: subjects generated per domain.")
    size: int = Field(48, ge=16, le=512, description="Phantom only: edge of the generated cube, in voxels.")
    bias_field: float = Field(0.0, ge=0.0, le=1.0,
                              description="Phantom only: alpha of the linear bias ramp B = y/H*alpha + (1-alpha).")
    noise: float | None = Field(
        None, ge=0.0, description="Phantom only: Gaussian noise std for every domain (default: per domain)."
    )
    manifest: str | None = Field(
        None, description="Path of the manifest (CSV or JSON); required when dataset is 'manifest'."
    )
    num_classes: int = Field(
        4, ge=2, le=1000, description="Number of label values, 0..num_classes-1 (0 is background)."
    )
    class_names: list[str] | None = Field(
        None,
        description="Names of the classes (length num_classes); default bg, wm, gm, csf for 4 classes, the organs "
        "for the abdomen.",
    )
    val_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Per-domain fraction of subjects for validation (selection, early stopping) without a split column",
    )
    test_fraction: float = Field(
        0.2,
        ge=0.0,
        lt=1.0,
        description="Per-domain fraction of subjects held out for the final test (0: no test split)",
    )
    intensity: Literal["raw", "volume", "dataset", "patch"] = Field(
        "volume",
        description="input normalization: raw; volume (z-score each volume); dataset (z-score with the statistics "
        "of its domain's training volumes); patch (z-score each patch, slice or window on its own)",
    )
    intensity_nonzero: bool = Field(
        False, description="volume/dataset: statistics over non-zero voxels only, which alone are normalized"
    )
    folds: int | None = Field(
        None, ge=2, le=1000, description="K-fold split by subject within each domain; the trial chooses its fold."
    )
    patch_size: int = Field(32, ge=8, le=512, description="Edge of the cubic training patches, in voxels.")
    batch_size: int = Field(4, ge=1, le=4096, description="Patches per training batch.")
    patches_per_epoch: int = Field(
        64,
        ge=1,
        le=10_000_000,
        description="Training patches drawn per epoch (iterations = patches_per_epoch // batch_size).",
    )
    seed: int = Field(0, description="Data seed: phantom generation and subject split.")
    align: Literal["none", "global", "region"] = Field(
        "none",
        description="DualNorm Appendix A input alignment to the reference domain: none, global (image statistics) "
        "or region (per-class statistics, uses labels)",
    )
    align_reference: str | None = Field(
        None, description="reference (target) domain of the alignment; default: the first of data.domains"
    )
    cache_dir: str | None = Field(
        None, description="Where the phantom is written; default $SEGSWEEP_CACHE or ~/.cache/segsweep."
    )

    @model_validator(mode="before")
    @classmethod
    def _abdomen_defaults(cls, data: Any) -> Any:
        # The abdomen has its own domains and nine classes: `dataset: abdomen` alone is a valid data section.
        if isinstance(data, dict) and data.get("dataset") == "abdomen":
            from platform.data.phantom_names import ABDOMEN_CLASS_NAMES, ABDOMEN_DOMAINS

            data = {"domains": list(ABDOMEN_DOMAINS), "num_classes": len(ABDOMEN_CLASS_NAMES), **data}
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> DataConfig:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}: "
                "give one name per class, background first"
            )
        duplicates = sorted({d for d in self.domains if self.domains.count(d) > 1})
        if duplicates:
            raise ValueError(f"domains lists {duplicates} more than once: list each domain once")
        for role in ("train_domains", "eval_domains"):
            chosen = getattr(self, role)
            if chosen is None:
                continue
            if not chosen:
                raise ValueError(f"{role} is empty: list at least one domain, or leave it unset for all of domains")
            repeated = sorted({d for d in chosen if chosen.count(d) > 1})
            if repeated:
                raise ValueError(f"{role} lists {repeated} more than once: list each domain once")
            outside = [d for d in chosen if self.domains and d not in self.domains]
            if outside:
                raise ValueError(f"{role} {outside} are not among data.domains {self.domains}: add them to "
                                 "data.domains or remove them")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(f"val_fraction {self.val_fraction} + test_fraction {self.test_fraction} leave no "
                             "training subjects: their sum must be below 1")
        if self.align_reference is not None and self.domains and self.align_reference not in self.domains:
            raise ValueError(
                f"align_reference {self.align_reference!r} is not among data.domains {self.domains}: "
                "choose one of them (or leave it unset for the first)"
            )
        return self

    def training_domains(self, present: Sequence[str] = ()) -> list[str]:
        """The training domains, in spec order: ``train_domains``, else ``domains``, else ``present`` sorted
        (without ``present``: ``train_domains or domains``, empty until a manifest names them)."""
        return list(self.train_domains or self.domains or sorted(present))

    def evaluation_domains(self, present: Sequence[str] = ()) -> list[str]:
        """The evaluation domains, in spec order: ``eval_domains``, else ``domains``, else ``present`` sorted
        (without ``present``: ``eval_domains or domains``, the one place that fallback is written)."""
        return list(self.eval_domains or self.domains or sorted(present))

    def names_of_classes(self) -> list[str]:
        """Class names, background first: ``class_names`` if given, else bg/wm/gm/csf or bg, class1, ..."""
        if self.class_names is not None:
            return list(self.class_names)
        if self.dataset == "abdomen":
            from platform.data.phantom_names import ABDOMEN_CLASS_NAMES

            if self.num_classes == len(ABDOMEN_CLASS_NAMES):
                return list(ABDOMEN_CLASS_NAMES)
        if self.num_classes == 4:
            return ["bg", "wm", "gm", "csf"]
        return ["bg", *(f"class{i}" for i in range(1, self.num_classes))]
