# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Inference backends: one loaded model on one device (ONNX Runtime, PyTorch, TensorRT)."""
