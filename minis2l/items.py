"""What every modality hands to the rest of the library: 2-D inputs with labels, per split.

Audio notes (log-mel spectrograms), images and video clips (laid out as film strips: the frames
side by side) are all ``(N, H, W)`` float32 arrays. From here on, patches, models, pretraining,
probes and the study see only these arrays and their labels; none of them asks which modality
they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "valid", "test")


@dataclass
class Items:
    """Inputs and labels of the train, valid and test splits.

    Attributes:
        inputs: ``{split: (N, H, W) float32}``.
        labels: ``{split: {task: (N,) int64}}``; the first task is the one the supervised
            reference trains on.
        fingerprint: a string that changes whenever the data change (the study's resume key).
        metadata: where the data came from (``"data"``: what the modality's loader takes to
            load the same items again) and how many items each split holds.
    """

    inputs: dict[str, np.ndarray]
    labels: dict[str, dict[str, np.ndarray]]
    fingerprint: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in SPLITS:
            if split not in self.inputs or split not in self.labels:
                raise ValueError(f"items need a {split!r} split")
            n = len(self.inputs[split])
            if self.inputs[split].ndim != 3:
                raise ValueError(
                    f"{split} inputs must be (N, H, W), got shape {self.inputs[split].shape}"
                )
            for task, y in self.labels[split].items():
                if len(y) != n:
                    raise ValueError(f"{split} has {n} inputs but {len(y)} {task} labels")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label names, supervised task first."""
        return tuple(self.labels["train"])
