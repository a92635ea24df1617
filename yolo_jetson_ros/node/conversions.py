# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Conversions between ROS messages and the pipeline's arrays."""

from typing import Any, List, Mapping, Optional, Tuple

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from ..pipeline.detections import Detections
from ..pipeline.image_codec import decode_image, ImageFormatError

try:  # vision_msgs >= 4.1 (Humble's first release, 4.0.0, lacks LabelInfo)
    from vision_msgs.msg import LabelInfo, VisionClass
    HAVE_LABEL_INFO = True
except ImportError:  # pragma: no cover - depends on the installed vision_msgs
    LabelInfo = VisionClass = None
    HAVE_LABEL_INFO = False


def image_to_array(msg: Image) -> Tuple[np.ndarray, bool]:
    """
    Return ``(HxWx3 uint8, is_bgr)`` for a sensor_msgs/Image, a zero-copy view for bgr8/rgb8.

    Raises ``ImageFormatError`` when encoding, size, step and data disagree.
    """
    return decode_image(
        msg.data, msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian)
    )


def compressed_to_array(msg: CompressedImage) -> Tuple[np.ndarray, bool]:
    """
    Decode a sensor_msgs/CompressedImage (jpeg/png) into ``(HxWx3 uint8 BGR, True)``.

    Raises ``ImageFormatError`` for an empty or undecodable payload.
    """
    fmt = msg.format or 'unknown format'
    if len(msg.data) == 0:
        raise ImageFormatError(f'compressed image ({fmt}) has an empty payload')
    buf = np.frombuffer(msg.data, np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFormatError(f'cannot decode the {len(msg.data)}-byte compressed image ({fmt}); '
                               'expected jpeg or png (the image_transport "compressed" plugin)')
    return image, True


def message_to_array(msg: Any) -> Tuple[np.ndarray, bool]:
    """Return ``(HxWx3 uint8, is_bgr)`` for a sensor_msgs/Image or sensor_msgs/CompressedImage."""
    if isinstance(msg, CompressedImage):
        return compressed_to_array(msg)
    return image_to_array(msg)


def label_info_msg(names: Mapping[int, str], threshold: float,
                   header: Optional[Header] = None) -> Any:
    """
    Build a vision_msgs/LabelInfo: class_map (uint16 index + name) and threshold = conf.

    Returns None when the installed vision_msgs has no LabelInfo (4.0.0).
    """
    if not HAVE_LABEL_INFO:
        return None
    msg = LabelInfo()
    if header is not None:
        msg.header = header
    msg.class_map = [VisionClass(class_id=int(i), class_name=str(names[i])) for i in sorted(names)
                     if 0 <= int(i) <= 0xFFFF]
    msg.threshold = float(threshold)
    return msg


def array_to_image(image: np.ndarray, header: Header, encoding: str = 'bgr8') -> Image:
    """Build a sensor_msgs/Image from an HxWx3 uint8 array (data assigned as bytes: fast path)."""
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.shape[1] * (image.shape[2] if image.ndim == 3 else 1))
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


class DetectionArrayBuilder:
    """
    Fill one reused Detection2DArray per frame, for a publisher that serializes at once.

    rclpy's ``publish()`` converts the message before it returns, so the same objects can carry
    the next frame. Building fresh vision_msgs objects costs ~16 us per detection (every nested
    message, a 36-double covariance array each); refilling them ~2 us.
    """

    def __init__(self) -> None:
        self._msg = Detection2DArray()
        self._pool: List[Detection2D] = []

    def build(self, detections: Detections, header: Header) -> Detection2DArray:
        """
        Return the Detection2DArray of ``detections``, valid until the next call.

        The image's header unchanged, boxes in original-image pixels;
        ``results[0].hypothesis.class_id`` is the class index as a decimal string (Isaac ROS'
        convention; names come on the LabelInfo topic), ``id`` the track id when tracking
        (empty for a detection no track holds yet).
        """
        boxes = detections.centers_sizes().tolist()
        scores = detections.scores.tolist()
        class_ids = detections.class_ids.tolist()
        track_ids = detections.track_ids.tolist() if detections.track_ids is not None else None
        pool = self._pool
        while len(pool) < len(boxes):
            det = Detection2D()
            det.results.append(ObjectHypothesisWithPose())
            pool.append(det)
        for i, (cx, cy, w, h) in enumerate(boxes):
            det = pool[i]
            det.header = header
            det.bbox.center.position.x = cx
            det.bbox.center.position.y = cy
            det.bbox.size_x = w
            det.bbox.size_y = h
            hyp = det.results[0].hypothesis
            hyp.class_id = str(class_ids[i])
            hyp.score = scores[i]
            det.id = str(track_ids[i]) if track_ids is not None and track_ids[i] >= 0 else ''
        self._msg.header = header
        self._msg.detections = pool[:len(boxes)]
        return self._msg


def detections_to_msg(detections: Detections, header: Header) -> Detection2DArray:
    """Build a new Detection2DArray (see :meth:`DetectionArrayBuilder.build`)."""
    return DetectionArrayBuilder().build(detections, header)


def msg_to_detections(msg: Detection2DArray) -> Detections:
    """Inverse of :func:`detections_to_msg` (for tests and tools that consume our output)."""
    n = len(msg.detections)
    boxes = np.zeros((n, 4), np.float32)
    scores = np.zeros((n,), np.float32)
    classes = np.zeros((n,), np.int64)
    for i, det in enumerate(msg.detections):
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        boxes[i] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        scores[i] = det.results[0].hypothesis.score
        classes[i] = int(det.results[0].hypothesis.class_id)
    return Detections(boxes, scores, classes)


def class_names_summary(names: Mapping[int, str], limit: int = 5) -> str:
    """Return 'person, bicycle, car, ... (80 classes)' for logs."""
    shown = ', '.join(names[i] for i in sorted(names)[:limit])
    return f'{shown}{", ..." if len(names) > limit else ""} ({len(names)} classes)'
