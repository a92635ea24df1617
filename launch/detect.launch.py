# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Start the YOLO detector lifecycle node.

    ros2 launch yolo_jetson_ros detect.launch.py model:=yolo11n image:=/camera/image_raw
    ros2 launch yolo_jetson_ros detect.launch.py precision:=fp16 dla_core:=0 autostart:=true
    ros2 launch yolo_jetson_ros detect.launch.py \
        image_topics:="['/cam0/image_raw', '/cam1/image_raw']" batch:=2

With autostart:=false (default) drive it with `ros2 lifecycle set /yolo_detector configure`
then `activate`. Parameters come from params_file (config/detector.yaml by default); a launch
argument left empty keeps the file's value, a set one overrides it.
"""

import os
from typing import Any, Dict, List

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
import yaml

PACKAGE = 'yolo_jetson_ros'
# launch argument -> parameter; '' (the default) = keep the params_file value
OVERRIDES = ('model', 'backend', 'device', 'precision', 'dla_core', 'imgsz', 'batch',
             'engine_cache_dir', 'image_topics', 'input_transport', 'qos_reliability', 'tracker',
             'conf', 'classes', 'publish_debug_image', 'autostart')


def _parse(text: str) -> Any:
    """Read a launch argument as YAML (ints, floats, booleans, lists), like ros2 param set."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _node(context: LaunchContext) -> List[LifecycleNode]:
    """Build the node with the parameter overrides that were given."""
    overrides: Dict[str, Any] = {}
    for name in OVERRIDES:
        text = LaunchConfiguration(name).perform(context)
        if text != '':
            value = _parse(text)
            if name in ('model', 'device', 'engine_cache_dir', 'classes') and \
                    not isinstance(value, (str, list)):
                value = text  # e.g. a model named 123 stays a string
            overrides[name] = value
    image = LaunchConfiguration('image').perform(context)
    remappings = [('detections_output', LaunchConfiguration('detections').perform(context))]
    if image:
        remappings.append(('image', image))
    return [LifecycleNode(
        package=PACKAGE,
        executable='detector_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=remappings,
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the lifecycle node."""
    share = get_package_share_directory(PACKAGE)
    fastdds_profile = os.path.join(share, 'config', 'fastdds_large_images.xml')

    def arg(name: str, default: str, description: str) -> DeclareLaunchArgument:
        return DeclareLaunchArgument(name, default_value=default, description=description)

    keep = " ('' = params_file value)"
    args = [
        arg('model', '', 'Model name (yolo11n, yolov8s, ...) or path to .pt/.onnx/.engine' + keep),
        arg('backend', '', 'auto, tensorrt, torch or onnxruntime' + keep),
        arg('device', '', 'cpu, cuda or cuda:N' + keep),
        arg('precision', '', 'auto, fp32, fp16 or int8' + keep),
        arg('dla_core', '', 'TensorRT DLA core: -1 = GPU, 0 or 1' + keep),
        arg('imgsz', '', 'Network input size' + keep),
        arg('batch', '', 'Images per inference (several cameras)' + keep),
        arg('engine_cache_dir', '', 'Engine/ONNX cache folder' + keep),
        arg('image', '', 'Input image topic: remaps "image" (one camera)'),
        arg('image_topics', '', "Several cameras: \"['/cam0/image_raw', '/cam1/image_raw']\""
            + keep),
        arg('input_transport', '', 'raw or compressed (<image>/compressed)' + keep),
        arg('qos_reliability', '', 'best_effort or reliable' + keep),
        arg('tracker', '', 'none, bytetrack or botsort' + keep),
        arg('conf', '', 'Confidence threshold' + keep),
        arg('classes', '', "Classes to keep, e.g. \"['person', 'car']\"" + keep),
        arg('publish_debug_image', '', 'Annotated image on detections_image' + keep),
        arg('detections', 'detections_output', 'Output topic (remaps "detections_output")'),
        arg('namespace', '', 'Node namespace'),
        arg('node_name', 'yolo_detector', 'Node name'),
        arg('params_file', os.path.join(share, 'config', 'detector.yaml'),
            'YAML parameter file (key /** applies to any node name)'),
        arg('autostart', '', 'true: configure and activate at start-up' + keep),
        arg('log_level', 'info', 'Logging level'),
        arg('use_fastdds_profile', 'true',
            'Use the large-image shared-memory Fast DDS profile of this package'),
    ]
    use_profile = IfCondition(LaunchConfiguration('use_fastdds_profile'))
    return LaunchDescription([
        *args,
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', fastdds_profile,
                               condition=use_profile),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', fastdds_profile,
                               condition=use_profile),
        OpaqueFunction(function=_node),
    ])
