# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Multi-object tracking on top of our detections with Ultralytics' ByteTrack / BoT-SORT.

The trackers come from ``ultralytics.trackers`` with the configuration yaml that ships inside the
ultralytics package (``cfg/trackers/bytetrack.yaml`` / ``botsort.yaml``); they are fed with
:class:`Detections` (boxes in original-image pixels), one tracker per camera. No ROS here.
"""

import inspect
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..pipeline.detections import Detections

TRACKERS = ('none', 'bytetrack', 'botsort')


class TrackerError(RuntimeError):
    """The tracker cannot be created; the message says why."""


class _TrackInput:
    """The results-like view Ultralytics' trackers read: conf, cls, xywh, xyxy, bool indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy = xyxy
        self.conf = conf
        self.cls = cls

    @property
    def xywh(self) -> np.ndarray:
        """Return center x, center y, width, height rows."""
        out = np.empty_like(self.xyxy)
        out[:, :2] = (self.xyxy[:, :2] + self.xyxy[:, 2:]) * 0.5
        out[:, 2:] = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return out

    def __len__(self) -> int:
        """Return the number of detections."""
        return int(self.conf.shape[0])

    def __getitem__(self, index: Any) -> '_TrackInput':
        """Return the detections selected by ``index`` (a mask or index array)."""
        return _TrackInput(self.xyxy[index], self.conf[index], self.cls[index])


def _load_config(kind: str) -> Any:
    """Return the default tracker configuration shipped with the ultralytics package."""
    try:
        import ultralytics
        from ultralytics.utils import IterableSimpleNamespace, YAML
    except ImportError as exc:
        raise TrackerError(f'tracker {kind} needs the ultralytics package ({exc}); '
                           'pip install ultralytics or set tracker none') from exc
    path = Path(ultralytics.__file__).parent / 'cfg' / 'trackers' / f'{kind}.yaml'
    if not path.is_file():
        raise TrackerError(f'the installed ultralytics has no {path.name}; set tracker none')
    cfg = IterableSimpleNamespace(**YAML.load(path))
    if kind == 'botsort':
        cfg.with_reid = False  # ReID needs a second model; motion + IoU only
    return cfg


class Tracker:
    """One camera's tracker: :meth:`update` returns the detections with ``track_ids`` set."""

    def __init__(self, kind: str, frame_rate: int = 30) -> None:
        if kind not in TRACKERS or kind == 'none':
            raise TrackerError(f"tracker must be one of {', '.join(TRACKERS[1:])}, got '{kind}'")
        cfg = _load_config(kind)
        if kind == 'bytetrack':
            from ultralytics.trackers import BYTETracker as cls
        else:
            from ultralytics.trackers import BOTSORT as cls
        # older Ultralytics releases take a frame_rate argument, newer ones only the config
        if 'frame_rate' in inspect.signature(cls.__init__).parameters:
            self._tracker = cls(args=cfg, frame_rate=frame_rate)
        else:
            self._tracker = cls(cfg)
        self.kind = kind

    def update(self, detections: Detections, image: Optional[np.ndarray] = None) -> Detections:
        """
        Associate ``detections`` with the tracks; untracked detections get track id -1.

        ``image`` (BGR, the frame the detections come from) is used by BoT-SORT's global motion
        compensation; ByteTrack ignores it.
        """
        n = len(detections)
        track_ids = np.full((n,), -1, np.int64)
        inputs = _TrackInput(detections.boxes_xyxy.astype(np.float32),
                             detections.scores.astype(np.float32),
                             detections.class_ids.astype(np.float32))
        rows = self._tracker.update(inputs, image)
        rows = np.asarray(rows)
        if rows.size:
            # rows: x1, y1, x2, y2, track_id, score, cls, idx (idx = our detection index)
            for row in rows.reshape(-1, rows.shape[-1]):
                idx = int(row[-1])
                if 0 <= idx < n:
                    track_ids[idx] = int(row[4])
        return Detections(detections.boxes_xyxy, detections.scores, detections.class_ids,
                          track_ids)

    def reset(self) -> None:
        """Forget every track (ids restart)."""
        self._tracker.reset()
