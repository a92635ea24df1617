# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The real node in its own process, driven through its lifecycle services over Fast DDS.

configure -> activate -> detections for bus.jpg (the pipeline's own boxes, header passed through)
-> deactivate (no more output) -> cleanup -> shutdown, then SIGINT exits with code 0.
"""

import os
import signal
import subprocess
import sys
import time
from typing import List

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (source tools/activate.sh)')
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from yolo_jetson_ros.node.conversions import array_to_image, msg_to_detections  # noqa: E402
from yolo_jetson_ros.node.lifecycle_client import LifecycleClient  # noqa: E402
from yolo_jetson_ros.pipeline.detector import build_detector, DetectorConfig  # noqa: E402

pytestmark = pytest.mark.integration


def _spin_until(executor, predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        executor.spin_once(timeout_sec=0.05)


@pytest.fixture
def node_process(yolo11n_pt, cache_dir):
    """Start the detector node as a separate process; stop it with SIGINT afterwards."""
    cmd = [sys.executable, '-m', 'yolo_jetson_ros.node.detector_node', '--ros-args',
           '-r', '__node:=lifecycle_test_detector', '-p', f'model:={yolo11n_pt}',
           '-p', 'backend:=onnxruntime', '-p', 'device:=cpu',
           '-p', f'engine_cache_dir:={cache_dir}', '-r', 'image:=camera/image_raw']
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_lifecycle_over_services_across_processes(node_process, rclpy_context, yolo11n_pt,
                                                  cache_dir, sample_images) -> None:
    """Walk every transition through lifecycle_msgs services and check the detections."""
    tester = rclpy.create_node('lifecycle_tester', context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(tester)
    received: List[Detection2DArray] = []
    tester.create_subscription(Detection2DArray, 'detections_output', received.append, 10)
    publisher = tester.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    client = LifecycleClient(tester, executor, '/lifecycle_test_detector')
    try:
        assert client.wait_for_services(60.0), 'node services never appeared'
        assert client.state() == 'unconfigured'
        assert client.transition('configure'), 'configure failed'
        assert client.state() == 'inactive'
        assert client.transition('activate')
        assert client.state() == 'active'
        _spin_until(executor, lambda: publisher.get_subscription_count() > 0, 30.0,
                    'the node to subscribe')

        image = sample_images['bus.jpg']
        header = Header(frame_id='camera_optical_frame')
        header.stamp.sec, header.stamp.nanosec = 1234, 5678
        publisher.publish(array_to_image(image, header))
        _spin_until(executor, lambda: received, 60.0, 'a Detection2DArray')
        msg = received[0]
        assert msg.header.frame_id == 'camera_optical_frame'
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1234, 5678)
        assert all(d.header == msg.header for d in msg.detections)

        # the boxes are exactly what the pipeline computes, in original-image pixels
        reference = build_detector(DetectorConfig(model=str(yolo11n_pt), backend='onnxruntime',
                                                  device='cpu', cache_dir=str(cache_dir)))
        expected = reference.detect(image)
        got = msg_to_detections(msg)
        assert len(got) == len(expected) > 0
        np.testing.assert_allclose(got.boxes_xyxy, expected.boxes_xyxy, atol=1e-3)
        np.testing.assert_allclose(got.scores, expected.scores, atol=1e-6)
        assert got.class_ids.tolist() == expected.class_ids.tolist()
        assert all(0 <= v <= s for b in got.boxes_xyxy for v, s in
                   zip(b, (image.shape[1], image.shape[0]) * 2))

        assert client.transition('deactivate')
        assert client.state() == 'inactive'
        received.clear()
        publisher.publish(array_to_image(image, header))
        for _ in range(40):  # an inactive node publishes nothing
            executor.spin_once(timeout_sec=0.05)
        assert not received
        assert client.transition('cleanup')
        assert client.state() == 'unconfigured'
        assert client.transition('configure'), 'a cleaned-up node configures again'
        assert client.transition('cleanup')
        assert client.transition('shutdown')
        assert client.state() == 'finalized'
    finally:
        executor.shutdown()
        tester.destroy_node()
    node_process.send_signal(signal.SIGINT)
    output, _ = node_process.communicate(timeout=30)
    assert node_process.returncode == 0, output
    assert 'Traceback' not in output, output
