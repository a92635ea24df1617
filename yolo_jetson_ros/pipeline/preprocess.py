# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Letterbox preprocessing with Ultralytics' semantics, into preallocated buffers.

The arithmetic matches ``ultralytics.data.augment.LetterBox`` (centred, scale-up allowed, pad
value 114, INTER_LINEAR, Python's round() on the half paddings) and
``ultralytics.utils.ops.scale_boxes``,
so boxes land on the same pixels as ``YOLO(...).predict()``.
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class LetterboxGeometry:
    """How an image of ``source_hw`` was placed into the ``input_hw`` network input."""

    source_hw: Tuple[int, int]
    input_hw: Tuple[int, int]
    resized_hw: Tuple[int, int]
    top: int
    left: int

    @staticmethod
    def compute(source_hw: Tuple[int, int], input_hw: Tuple[int, int]) -> 'LetterboxGeometry':
        """Compute the placement exactly as Ultralytics' LetterBox(auto=False, center=True)."""
        h0, w0 = source_hw
        hi, wi = input_hw
        r = min(hi / h0, wi / w0)
        new_w, new_h = max(round(w0 * r), 1), max(round(h0 * r), 1)
        dw, dh = (wi - new_w) / 2, (hi - new_h) / 2
        return LetterboxGeometry(
            source_hw, input_hw, (new_h, new_w), round(dh - 0.1), round(dw - 0.1)
        )

    def boxes_to_source(self, boxes_xyxy: np.ndarray, clip: bool = True) -> np.ndarray:
        """
        Map (N, 4) xyxy boxes from network-input pixels to source pixels, in place.

        As ``scale_boxes``: subtract the padding, divide by the per-axis gain of the rounded
        resize, clip to the image (predict() clips; Ultralytics' val scores unclipped boxes).
        """
        h0, w0 = self.source_hw
        new_h, new_w = self.resized_hw
        # strided views (x1, x2) and (y1, y2): in place, no fancy-index copies (~8x faster)
        xs, ys = boxes_xyxy[:, 0::2], boxes_xyxy[:, 1::2]
        xs -= self.left
        ys -= self.top
        xs /= new_w / w0
        ys /= new_h / h0
        if clip:
            np.clip(xs, 0, w0, out=xs)
            np.clip(ys, 0, h0, out=ys)
        return boxes_xyxy


class Letterboxer:
    """
    Turn uint8 HxWx3 images into the float32 NCHW RGB network input without per-frame allocs.

    Buffers (the padded canvas, the resize target of each source size seen, the input tensor) are
    allocated once; a new source size costs one allocation, then it is reused for every frame.
    """

    def __init__(self, input_hw: Tuple[int, int], batch: int = 1, dtype: type = np.float32):
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.batch = int(batch)
        self.input = np.zeros((self.batch, 3, *self.input_hw), dtype=dtype)
        self._canvas = np.full((*self.input_hw, 3), PAD_VALUE, np.uint8)
        self._canvas_geometry: 'LetterboxGeometry | None' = None
        self._resized: Dict[Tuple[int, int], np.ndarray] = {}
        self._geometry: Dict[Tuple[int, int], LetterboxGeometry] = {}

    def geometry(self, source_hw: Tuple[int, int]) -> LetterboxGeometry:
        """Return (and remember) the placement for a source size."""
        g = self._geometry.get(source_hw)
        if g is None:
            if (
                len(self._geometry) > 16
            ):  # a camera changing resolution forever must not grow memory
                self._geometry.clear()
                self._resized.clear()
            g = LetterboxGeometry.compute(source_hw, self.input_hw)
            self._geometry[source_hw] = g
        return g

    def letterbox(self, image: np.ndarray) -> Tuple[np.ndarray, LetterboxGeometry]:
        """Resize and pad an HxWx3 uint8 image into the canvas; return (canvas, geometry)."""
        g = self.geometry((int(image.shape[0]), int(image.shape[1])))
        new_h, new_w = g.resized_hw
        if self._canvas_geometry != g:  # the padding only needs painting when the placement moves
            self._canvas[...] = PAD_VALUE
            self._canvas_geometry = g
        target = self._canvas[g.top:g.top + new_h, g.left:g.left + new_w]
        if (new_h, new_w) == g.source_hw:
            target[...] = image
        else:
            resized = self._resized.get((new_h, new_w))
            if resized is None:
                resized = np.empty((new_h, new_w, 3), np.uint8)
                self._resized[(new_h, new_w)] = resized
            cv2.resize(image, (new_w, new_h), dst=resized, interpolation=cv2.INTER_LINEAR)
            target[...] = resized
        return self._canvas, g

    def prepare(self, image: np.ndarray, bgr: bool = True, slot: int = 0) -> LetterboxGeometry:
        """Letterbox ``image`` (HxWx3 uint8, BGR or RGB) into batch slot ``slot`` of ``input``."""
        canvas, g = self.letterbox(image)
        chw = canvas.transpose(2, 0, 1)
        if bgr:
            chw = chw[::-1]
        np.divide(chw, np.float32(255.0), out=self.input[slot], casting='unsafe')
        return g
