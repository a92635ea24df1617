# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The gather plan of a bilinear resize with OpenCV's INTER_LINEAR sampling, on a torch device.

Made once per source size; the GPU pipeline's letterbox reads it, with torch's kernels
(``gpu_pipeline.letterbox_into``) or the CUDA kernels (``cuda_kernels``).
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch


@dataclass
class ResizePlan:
    """Source indices and weights of a bilinear resize (cv2.INTER_LINEAR sampling)."""

    y0: torch.Tensor
    y1: torch.Tensor
    wy: torch.Tensor
    x0: torch.Tensor
    x1: torch.Tensor
    wx: torch.Tensor
    identity: bool


def _axis_plan(src: int, dst: int, device: torch.device) -> Tuple[torch.Tensor, ...]:
    """Return (i0, i1, w) for one axis: half-pixel centres, clamped at the borders as OpenCV."""
    scale = src / dst
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    i0 = np.floor(pos)
    w = pos - i0
    i0 = i0.astype(np.int64)
    low = i0 < 0
    i0[low], w[low] = 0, 0.0
    high = i0 >= src - 1
    i0[high], w[high] = src - 1, 0.0
    i1 = np.minimum(i0 + 1, src - 1)
    # OpenCV quantises the weights to 11 bits (INTER_RESIZE_COEF_SCALE = 2048)
    w = np.round(w * 2048.0) / 2048.0
    return (torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device),
            torch.from_numpy(w.astype(np.float32)).to(device))


def resize_plan(source_hw: Tuple[int, int], resized_hw: Tuple[int, int],
                device: torch.device) -> ResizePlan:
    """Precompute the gather indices and weights to resize ``source_hw`` to ``resized_hw``."""
    y0, y1, wy = _axis_plan(source_hw[0], resized_hw[0], device)
    x0, x1, wx = _axis_plan(source_hw[1], resized_hw[1], device)
    return ResizePlan(y0, y1, wy, x0, x1, wx, tuple(source_hw) == tuple(resized_hw))


__all__ = ['ResizePlan', 'resize_plan']
