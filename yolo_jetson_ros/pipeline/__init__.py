# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The detection pipeline: model resolution, backends, pre/post-processing.

Nothing in this package imports rclpy: it is usable and tested without ROS.
"""
