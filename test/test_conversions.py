# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Detection2DArray publishing: the reused message builder and the CDR writer.

Both must give exactly the messages built fresh from the detections.
"""

from typing import Optional

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from yolo_jetson_ros.node.conversions import (
    DetectionArrayBuilder, detections_to_msg, msg_to_detections
)
from yolo_jetson_ros.pipeline.detections import Detections


def make_detections(n: int, seed: int, tracked: bool) -> Detections:
    """Return ``n`` random detections, with track ids (some -1: no track yet) if ``tracked``."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 500, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 100, (n, 2)).astype(np.float32)], axis=1)
    return Detections(boxes, rng.uniform(0.25, 1, n).astype(np.float32), rng.integers(0, 80, n),
                      rng.integers(-1, 50, n) if tracked else None)


def header(i: int) -> Header:
    """Return a camera header for frame ``i``."""
    h = Header(frame_id=f'camera_{i % 2}_optical')
    h.stamp.sec, h.stamp.nanosec = 1000 + i, 7 * i
    return h


@pytest.mark.parametrize('tracked_first', [True, False])
def test_reused_builder_matches_fresh_messages(tracked_first: bool) -> None:
    builder = DetectionArrayBuilder()
    # counts that grow, shrink to zero and grow again; tracking that comes and goes
    for i, n in enumerate([5, 2, 0, 7, 3, 7]):
        dets = make_detections(n, seed=i, tracked=(i % 2 == 0) == tracked_first)
        built = builder.build(dets, header(i))
        fresh = detections_to_msg(dets, header(i))
        assert built == fresh
        assert len(built.detections) == n
        assert all(d.header.frame_id == f'camera_{i % 2}_optical' for d in built.detections)
        expected_ids = ([str(t) if t >= 0 else '' for t in dets.track_ids.tolist()]
                        if dets.track_ids is not None else [''] * n)
        assert [d.id for d in built.detections] == expected_ids


def test_serialized_message_survives_the_next_build() -> None:
    # publish() serializes before it returns; what it sent must not change with the next frame
    builder = DetectionArrayBuilder()
    first = make_detections(4, seed=1, tracked=True)
    wire = serialize_message(builder.build(first, header(1)))
    builder.build(make_detections(6, seed=2, tracked=False), header(2))
    received: Optional[Detection2DArray] = deserialize_message(wire, Detection2DArray)
    assert received == detections_to_msg(first, header(1))
    back = msg_to_detections(received)
    np.testing.assert_allclose(back.boxes_xyxy, first.boxes_xyxy, atol=1e-3)
    np.testing.assert_array_equal(back.class_ids, first.class_ids)


@pytest.mark.parametrize('seed', range(12))
def test_cdr_writer_reads_back_as_the_message(seed: int) -> None:
    # every padding case: frame_id lengths 0..11, class ids of 1..3 digits, track ids or none
    from yolo_jetson_ros.node.detection_cdr import DetectionArraySerializer, matches_rclpy
    serializer = DetectionArraySerializer()
    assert matches_rclpy(serializer)
    rng = np.random.default_rng(seed)
    for i, n in enumerate([0, 1, 3, 17]):
        dets = make_detections(n, seed=seed * 10 + i, tracked=bool((seed + i) % 2))
        if n:
            dets.class_ids[:] = rng.integers(0, 1000, n)  # up to 3 digits: every string length
        h = Header(frame_id='f' * ((seed + i) % 12))
        h.stamp.sec, h.stamp.nanosec = int(rng.integers(0, 2**31)), int(rng.integers(0, 10**9))
        wire = serializer.serialize(dets, h.stamp.sec, h.stamp.nanosec, h.frame_id)
        expected = serialize_message(detections_to_msg(dets, h))
        assert len(wire) == len(expected)
        assert deserialize_message(wire, Detection2DArray) == detections_to_msg(dets, h)


def test_cdr_self_check_refuses_a_wrong_writer() -> None:
    from yolo_jetson_ros.node.detection_cdr import DetectionArraySerializer, matches_rclpy

    class Misaligned(DetectionArraySerializer):
        def serialize(self, *args, **kwargs) -> bytes:
            wire = super().serialize(*args, **kwargs)
            return wire[:-4] + b'\x01\x00\x00\x00'  # the last id's string changed

    assert not matches_rclpy(Misaligned())
