"""The one value every reader returns: a labelled split held in memory or as file paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Split:
    """Examples of one split of a data set.

    Exactly one of ``images`` (uint8 ``[N, C, H, W]``, small images held in memory), ``paths``
    (image files decoded while streaming) or ``texts`` (raw texts) is set.
    """

    labels: torch.Tensor  # int64 [N]
    classes: list[str]  # class names, index = label
    images: torch.Tensor | None = None
    paths: list[str] | None = None
    texts: list[str] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> list[int]:
        """Number of examples of each class (length ``num_classes``)."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> Split:
        """The examples at ``indices`` (in that order); the class list is kept."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        picked = index.tolist()
        return Split(
            labels=self.labels[index].clone(),
            classes=list(self.classes),
            images=None if self.images is None else self.images[index].contiguous(),
            paths=None if self.paths is None else [self.paths[i] for i in picked],
            texts=None if self.texts is None else [self.texts[i] for i in picked],
        )
