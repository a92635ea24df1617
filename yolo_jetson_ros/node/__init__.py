# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""ROS 2 glue: the lifecycle node, parameter handling and message conversion."""
