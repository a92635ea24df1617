# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Draw detections on a copy of the frame for the debug image topic (no ROS)."""

from typing import Mapping, Tuple

import cv2
import numpy as np

from ..pipeline.detections import Detections


def class_colour(class_id: int) -> Tuple[int, int, int]:
    """Return a stable, well-separated BGR colour for a class index."""
    hue = (class_id * 47) % 180  # OpenCV hue range is 0..179
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(image: np.ndarray, detections: Detections, names: Mapping[int, str],
                    is_bgr: bool = True) -> np.ndarray:
    """Return a BGR copy of ``image`` with boxes, class names, scores and track ids drawn."""
    out = np.array(image, copy=True) if is_bgr else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    height, width = out.shape[:2]
    thickness = max(1, round(min(height, width) / 320))
    font_scale = 0.4 * thickness + 0.1
    track_ids = detections.track_ids
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(v)) for v in detections.boxes_xyxy[i])
        cls = int(detections.class_ids[i])
        colour = class_colour(cls)
        label = f'{names.get(cls, str(cls))} {float(detections.scores[i]):.2f}'
        if track_ids is not None and track_ids[i] >= 0:
            label = f'#{int(track_ids[i])} {label}'
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y1 - th - base if y1 - th - base >= 0 else y1
        cv2.rectangle(out, (x1, top), (x1 + tw, top + th + base), colour, cv2.FILLED)
        cv2.putText(out, label, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    return out
