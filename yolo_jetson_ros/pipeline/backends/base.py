# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""What every inference backend offers the pipeline."""

import abc
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..postprocess import NmsSettings


class BackendError(RuntimeError):
    """A backend could not be created or run; the message says why and what to do."""


@dataclass
class ModelInfo:
    """What pre/post-processing needs to know about a model, read from the model itself."""

    names: Dict[int, str]
    input_hw: Tuple[int, int]
    batch: int = 1
    stride: int = 32
    end2end: bool = False
    task: str = 'detect'
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Return the number of classes the model predicts."""
        return len(self.names)


class Backend(abc.ABC):
    """
    One loaded model on one device: float32 NCHW RGB in [0, 1] in, the raw head output out.

    Subclasses load in ``__init__`` (slow work belongs to configure, never to a frame) and set
    :attr:`info`, :attr:`device` and :attr:`precision`.
    """

    name: str = 'base'
    # True where the backend also runs pre/post-processing on its device (detect_images)
    has_fused_path: bool = False

    def __init__(self) -> None:
        self.info: Optional[ModelInfo] = None
        self.device: str = 'cpu'
        self.precision: str = 'fp32'
        # the gpu_pipeline.GpuPipeline of a backend with a fused path (torch, TensorRT on CUDA)
        self.pipeline: Optional[Any] = None

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on ``batch`` (B, 3, H, W) float32; return its output as a NumPy array."""

    def detect_images(self, images: Sequence[np.ndarray], bgr_flags: Sequence[bool],
                      settings: NmsSettings) -> List[np.ndarray]:
        """Fused path: one (N, 6) float32 array per image in source pixels (if has_fused_path)."""
        if self.pipeline is None:
            raise BackendError(f'the {self.name} backend has no fused device path here '
                               f'(device {self.device})')
        return self.pipeline.detect(images, bgr_flags, settings)

    def after_warm_up(self) -> None:
        """Drop the blank warm-up image's buffers: cameras have sizes of their own."""
        if self.pipeline is not None:
            self.pipeline.forget_sources()

    @property
    def stage_ms(self) -> Optional[Tuple[float, float, float]]:
        """Return (pre, device, post) ms of the last fused frame, if any."""
        return self.pipeline.stage_ms if self.pipeline is not None else None

    def close(self) -> None:
        """Release the model and its device memory."""

    def describe(self) -> str:
        """Return a one-line description for logs: backend, device, precision, input, classes."""
        info = self.info
        shape = f'{info.batch}x3x{info.input_hw[0]}x{info.input_hw[1]}' if info else '?'
        classes = info.num_classes if info else '?'
        text = (
            f'backend={self.name} device={self.device} precision={self.precision} '
            f'input={shape} classes={classes}'
        )
        if self.pipeline is not None:  # the fused GPU path: how its decode + NMS run
            text += f' postprocess={self.pipeline.postprocess_mode}'
        return text
