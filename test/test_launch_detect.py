# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
launch_testing test of launch/detect.launch.py against the installed package.

Starts the launch file (IncludeLaunchDescription), drives the lifecycle node through its
change_state service, publishes bus.jpg and waits for detections. Needs launch_testing and
launch_ros (ROS packages, not on PyPI) and the colcon-installed package; skipped without them.
"""

import os
from pathlib import Path
import time
import unittest

from ament_index_python.packages import get_package_share_directory
import cv2
import pytest

launch_testing = pytest.importorskip(
    'launch_testing',
    reason='launch_testing not installed (not on PyPI; install ros-<distro>-launch-testing-ros)')

from launch import LaunchDescription  # noqa: E402, I100
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

SHARED = Path(os.environ.get('YOLO_JETSON_ROS_SHARED',
                             Path(__file__).resolve().parents[2] / 'shared'))
MODEL = SHARED / 'models' / 'yolo11n_coco128.pt'
if not MODEL.exists():
    pytest.skip(f'yolo11n_coco128.pt not found at {MODEL} (set YOLO_JETSON_ROS_SHARED)',
                allow_module_level=True)
NAMESPACE = f'/launch_test_{os.getpid()}'
NODE = f'{NAMESPACE}/yolo_detector'
IMAGE_TOPIC = f'{NAMESPACE}/camera/image_raw'
TIMEOUT_S = 120.0


@pytest.mark.launch_test
def generate_test_description() -> LaunchDescription:
    """Include detect.launch.py with a CPU model, then signal ReadyToTest."""
    launch_file = os.path.join(get_package_share_directory('yolo_jetson_ros'), 'launch',
                               'detect.launch.py')
    cache = os.environ.get('YOLO_JETSON_ROS_TEST_CACHE', '/tmp/yolo_jetson_ros_launch_test')
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(launch_file),
        launch_arguments={'model': str(MODEL), 'backend': 'onnxruntime', 'device': 'cpu',
                          'namespace': NAMESPACE, 'image': IMAGE_TOPIC,
                          'engine_cache_dir': cache, 'log_level': 'info'}.items())
    return LaunchDescription([include, launch_testing.actions.ReadyToTest()])


class TestDetectLaunch(unittest.TestCase):
    """Drive the launched node: configure, activate, detect."""

    @classmethod
    def setUpClass(cls) -> None:
        """Create the probe node."""
        rclpy.init()
        cls.node = rclpy.create_node('detect_launch_probe')

    @classmethod
    def tearDownClass(cls) -> None:
        """Destroy the probe node."""
        cls.node.destroy_node()
        rclpy.shutdown()

    def _spin_until(self, predicate, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not predicate():
            self.assertLess(time.monotonic(), deadline, f'{what} within {TIMEOUT_S:.0f} s')
            rclpy.spin_once(self.node, timeout_sec=0.1)

    def _transition(self, client, transition_id: int, label: str) -> None:
        future = client.call_async(ChangeState.Request(
            transition=Transition(id=transition_id)))
        self._spin_until(future.done, f'{label} answered')
        self.assertTrue(future.result().success, f'{label} failed (see the node output)')

    def test_configure_activate_detect(self, proc_output) -> None:
        """The launched node configures, activates and detects persons in bus.jpg."""
        client = self.node.create_client(ChangeState, f'{NODE}/change_state')
        self.assertTrue(client.wait_for_service(timeout_sec=TIMEOUT_S),
                        f'{NODE}/change_state never appeared')
        self._transition(client, Transition.TRANSITION_CONFIGURE, 'configure')
        self._transition(client, Transition.TRANSITION_ACTIVATE, 'activate')
        proc_output.assertWaitFor('active: waiting for images', timeout=TIMEOUT_S)

        received = []
        self.node.create_subscription(Detection2DArray, f'{NAMESPACE}/detections_output',
                                      received.append, 10)
        pub = self.node.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        import ultralytics
        bus = cv2.imread(str(Path(ultralytics.__file__).parent / 'assets' / 'bus.jpg'))
        msg = Image(height=bus.shape[0], width=bus.shape[1], encoding='bgr8',
                    step=bus.shape[1] * 3)
        msg.header.frame_id = 'launch_test_camera'
        msg.data = bus.tobytes()
        deadline = time.monotonic() + TIMEOUT_S
        while not received:
            self.assertLess(time.monotonic(), deadline, 'no detections arrived')
            pub.publish(msg)
            for _ in range(10):
                rclpy.spin_once(self.node, timeout_sec=0.1)
        result = received[0]
        self.assertEqual(result.header.frame_id, 'launch_test_camera')
        self.assertIn('0', [d.results[0].hypothesis.class_id for d in result.detections])


@launch_testing.post_shutdown_test()
class TestDetectLaunchShutdown(unittest.TestCase):
    """The node exits cleanly when the launch shuts down."""

    def test_exit_codes(self, proc_info) -> None:
        """Exit code 0, or SIGINT/SIGTERM from the launch shutdown."""
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
