# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Start the YOLO detector lifecycle node.

    ros2 launch yolo_jetson_ros detect.launch.py model:=yolo11n image:=/camera/image_raw
    ros2 launch yolo_jetson_ros detect.launch.py precision:=fp16 dla_core:=0 autostart:=true

With autostart:=false (default) drive it with `ros2 lifecycle set /yolo_detector configure`
then `activate`. Several cameras: image_topics:="['/cam0/image_raw', '/cam1/image_raw']".
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the lifecycle node."""
    share = get_package_share_directory('yolo_jetson_ros')
    fastdds_profile = os.path.join(share, 'config', 'fastdds_large_images.xml')

    def arg(name: str, default: str, description: str) -> DeclareLaunchArgument:
        return DeclareLaunchArgument(name, default_value=default, description=description)

    args = [
        arg('model', 'yolo11n', 'Model name or path to .pt/.onnx/.engine'),
        arg('backend', 'auto', 'auto, tensorrt, torch or onnxruntime'),
        arg('precision', 'auto', 'auto, fp32, fp16 or int8'),
        arg('dla_core', '-1', 'TensorRT DLA core (-1 = GPU)'),
        arg('imgsz', '640', 'Network input size'),
        arg('image', 'image', 'Input image topic (remaps "image")'),
        arg('detections', 'detections_output', 'Output topic (remaps "detections_output")'),
        arg('image_topics', "['image']", 'Several cameras: a list of image topics'),
        arg('namespace', '', 'Node namespace'),
        arg('node_name', 'yolo_detector', 'Node name'),
        arg('params_file', os.path.join(share, 'config', 'detector.yaml'),
            'YAML parameter file (launch arguments override it)'),
        arg('autostart', 'false', 'Configure and activate at start-up'),
        arg('log_level', 'info', 'Logging level'),
        arg('use_fastdds_profile', 'true',
            'Use the large-image shared-memory Fast DDS profile of this package'),
    ]
    node = LifecycleNode(
        package='yolo_jetson_ros',
        executable='detector_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {
                'model': LaunchConfiguration('model'),
                'backend': LaunchConfiguration('backend'),
                'precision': LaunchConfiguration('precision'),
                'dla_core': ParameterValue(LaunchConfiguration('dla_core'), value_type=int),
                'imgsz': ParameterValue(LaunchConfiguration('imgsz'), value_type=int),
                'image_topics': ParameterValue(LaunchConfiguration('image_topics'),
                                               value_type=list),
                'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool),
            },
        ],
        remappings=[('image', LaunchConfiguration('image')),
                    ('detections_output', LaunchConfiguration('detections'))],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    return LaunchDescription([
        *args,
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', fastdds_profile,
                               condition=_if_true('use_fastdds_profile')),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', fastdds_profile,
                               condition=_if_true('use_fastdds_profile')),
        node,
    ])


def _if_true(name: str):
    from launch.conditions import IfCondition
    return IfCondition(LaunchConfiguration(name))
