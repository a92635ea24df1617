# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Several detector nodes in one process, spun by one MultiThreadedExecutor.

    python -m yolo_jetson_ros.examples.multi_detector /cam0/image_raw /cam1/image_raw \
        --model yolo11n --backend onnxruntime

Each camera gets its own node (own model instance, namespace /detector_<i>, detections on
/detector_<i>/detections_output). For one model shared by several cameras, prefer one node with
``image_topics`` (the frames are batched into one inference).
"""

import argparse
from typing import List, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from ..node.detector_node import YoloDetectorNode


def main(argv: Optional[List[str]] = None) -> None:
    """Start one configured, active detector per image topic and spin them together."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('topics', nargs='+', help='image topics, one detector each')
    parser.add_argument('--model', default='yolo11n')
    parser.add_argument('--backend', default='auto')
    args, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=ros_args)
    nodes = []
    executor = MultiThreadedExecutor()
    try:
        for i, topic in enumerate(args.topics):
            node = YoloDetectorNode(namespace=f'detector_{i}', parameter_overrides=[
                Parameter('model', value=args.model), Parameter('backend', value=args.backend),
                Parameter('image_topics', value=[topic])])
            nodes.append(node)
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS or \
                    node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error(f'could not start the detector for {topic}; see above')
                return
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            node.stop()
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
