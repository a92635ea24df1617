# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Decode YOLO head outputs and run NMS, with Ultralytics' semantics, in NumPy.

Two output layouts exist (see ``ultralytics.utils.nms.non_max_suppression``):

* dense ``(B, 4 + nc, A)``: YOLOv8 / YOLO11 (and YOLO26's one-to-many head): cx, cy, w, h in
  network-input pixels, then per-class scores (already sigmoid); class-aware NMS is ours.
* end-to-end ``(B, K, 6)``: YOLOv10 / YOLO26 NMS-free heads and ``nms=True`` exports: x1, y1,
  x2, y2, score, class; only thresholding, class filtering and ``max_det`` apply.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

# Ultralytics offsets boxes by class * MAX_WH so one NMS call never merges different classes
MAX_WH = 7680.0
MAX_NMS = 30000


@dataclass
class NmsSettings:
    """Thresholds applied after inference; all can change between two frames."""

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    classes: Optional[Sequence[int]] = None
    agnostic: bool = False
    # Ultralytics' val uses one row per (box, class) above conf; predict keeps only the best class.
    multi_label: bool = False
    _classes_array: Optional[np.ndarray] = field(default=None, init=False, repr=False)

    def class_filter(self) -> Optional[np.ndarray]:
        """Return the allowed class indices as an array, or None for all classes."""
        if self.classes is None or len(self.classes) == 0:
            return None
        # compare contents, not lengths: a live change [0] -> [42] must not reuse [0]
        if self._classes_array is None or self._classes_array.tolist() != list(self.classes):
            self._classes_array = np.asarray(list(self.classes), dtype=np.int64)
        return self._classes_array


def is_end2end_output(shape: Sequence[int]) -> bool:
    """Return True for a (B, K, 6) end-to-end output, False for a dense (B, 4 + nc, A) one."""
    return (
        len(shape) == 3 and shape[-1] == 6 and shape[1] != 10
    )  # 4 + 6 classes would be (B, 10, A)


def nms_xyxy(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int
) -> np.ndarray:
    """
    Greedy NMS (torchvision.ops.nms semantics: suppress IoU > threshold); return kept indices.

    ``boxes`` (N, 4) xyxy, ``scores`` (N,). Stops once ``limit`` boxes are kept.
    """
    order = np.argsort(-scores, kind='stable')
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep: List[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[
            ~(iou > iou_threshold)
        ]  # NaN IoU (degenerate boxes) keeps the box, as torchvision
    return np.asarray(keep, dtype=np.int64)


def decode_dense(pred: np.ndarray, settings: NmsSettings) -> np.ndarray:
    """Decode one image's dense output (4 + nc, A) to (N, 6) rows x1, y1, x2, y2, score, class."""
    scores_all = pred[4:]
    best = scores_all.max(axis=0)
    candidates = np.flatnonzero(best > settings.conf)
    if candidates.size == 0:
        return np.zeros((0, 6), np.float32)
    cand_scores = scores_all[:, candidates]
    if settings.multi_label:
        cls_idx, col = np.nonzero(cand_scores > settings.conf)
        anchors = candidates[col]
        conf = cand_scores[cls_idx, col]
    else:
        cls_idx = cand_scores.argmax(axis=0)
        anchors = candidates
        conf = best[candidates]
    allowed = settings.class_filter()
    if allowed is not None:
        mask = np.isin(cls_idx, allowed)
        cls_idx, anchors, conf = cls_idx[mask], anchors[mask], conf[mask]
    if conf.size == 0:
        return np.zeros((0, 6), np.float32)
    if conf.size > MAX_NMS:
        top = np.argsort(-conf, kind='stable')[:MAX_NMS]
        cls_idx, anchors, conf = cls_idx[top], anchors[top], conf[top]
    xywh = pred[:4, anchors].T.astype(np.float32)
    boxes = np.empty_like(xywh)
    half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
    boxes[:, 0] = xywh[:, 0] - half_w
    boxes[:, 1] = xywh[:, 1] - half_h
    boxes[:, 2] = xywh[:, 0] + half_w
    boxes[:, 3] = xywh[:, 1] + half_h
    offsets = 0.0 if settings.agnostic else cls_idx.astype(np.float32)[:, None] * MAX_WH
    keep = nms_xyxy(boxes + offsets, conf, settings.iou, settings.max_det)
    out = np.empty((keep.size, 6), np.float32)
    out[:, :4] = boxes[keep]
    out[:, 4] = conf[keep]
    out[:, 5] = cls_idx[keep]
    return out


def decode_end2end(pred: np.ndarray, settings: NmsSettings) -> np.ndarray:
    """Filter one image's end-to-end output (K, 6) by score, class and max_det."""
    mask = pred[:, 4] > settings.conf
    allowed = settings.class_filter()
    if allowed is not None:
        mask &= np.isin(pred[:, 5].astype(np.int64), allowed)
    return pred[mask][: settings.max_det].astype(np.float32)


def decode(
    output: np.ndarray, settings: NmsSettings, end2end: Optional[bool] = None
) -> List[np.ndarray]:
    """Decode a batch of raw outputs to one (N, 6) array per image (network-input pixels)."""
    if end2end is None:
        end2end = is_end2end_output(output.shape)
    fn = decode_end2end if end2end else decode_dense
    return [fn(output[b], settings) for b in range(output.shape[0])]
