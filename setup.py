# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""ament_python package definition of yolo_jetson_ros."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'yolo_jetson_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml', 'README.md', 'LICENSE']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='yolo_jetson_ros maintainers',
    maintainer_email='maintainers@yolo-jetson-ros.invalid',
    description='YOLO detection lifecycle node for ROS 2: TensorRT (GPU/DLA), PyTorch, ONNX RT',
    license='AGPL-3.0-or-later',
    # extras_require, not tests_require: new setuptools drops tests_require and colcon then
    # silently runs zero tests with unittest
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            f'detector_node = {PACKAGE}.node.detector_node:main',
            f'demo = {PACKAGE}.demo:main',
            f'build_engine = {PACKAGE}.build_engine:main',
            f'benchmark = {PACKAGE}.benchmark:main',
        ]
    },
)
