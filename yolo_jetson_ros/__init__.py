# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""YOLO object detection for ROS 2: a lifecycle node over TensorRT, PyTorch and ONNX Runtime."""

__version__ = '0.1.0'
