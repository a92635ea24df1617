# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""The result type of the pipeline: boxes in original-image pixels."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """
    Detections for one image, boxes in pixels of the ORIGINAL image (not the network input).

    Attributes
    ----------
    boxes_xyxy : (N, 4) float32, x1, y1, x2, y2, clipped to the image.
    scores : (N,) float32, in [0, 1], sorted descending.
    class_ids : (N,) int64, indices into the model's class names.
    track_ids : (N,) int64 track identities, or None when no tracker runs.

    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: 'np.ndarray | None' = None

    def __len__(self) -> int:
        """Return the number of detections."""
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> 'Detections':
        """Return a result without detections."""
        return Detections(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        )

    def centers_sizes(self) -> np.ndarray:
        """Return (N, 4) float64 rows of center x, center y, width, height (BoundingBox2D)."""
        b = self.boxes_xyxy.astype(np.float64)
        out = np.empty_like(b)
        out[:, 0] = (b[:, 0] + b[:, 2]) * 0.5
        out[:, 1] = (b[:, 1] + b[:, 3]) * 0.5
        out[:, 2] = b[:, 2] - b[:, 0]
        out[:, 3] = b[:, 3] - b[:, 1]
        return out
