# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Lifecycle cycling: configure -> activate -> deactivate -> cleanup, again and again.

After the first 10 cycles (imports, allocator pools and caches settle) the process must not grow:
the same threads, the same file descriptors, RSS within 5 %. The CI version runs 40 cycles; the
``soak`` version 1000 (only with ``YOLO_JETSON_ROS_SOAK=1``, as ``make soak`` sets it).
"""

import gc
import os
from pathlib import Path
from typing import Any, Dict

import cv2
import pytest

from reliability_support import check_flat, fresh_node, Graph, image_msg, process_figures

pytestmark = pytest.mark.integration

SOAK = os.environ.get('YOLO_JETSON_ROS_SOAK') == '1'
WARM_UP_CYCLES = 10


def run_cycles(context: Any, model: Path, cache: Path, image: Any, cycles: int) -> Dict[str, Any]:
    """Cycle one node ``cycles`` times (one frame detected per cycle); return the figures."""
    from rclpy.lifecycle import TransitionCallbackReturn
    node = fresh_node(context, model, cache, qos_reliability='reliable')
    graph = Graph(context, node)
    ok = TransitionCallbackReturn.SUCCESS
    try:
        baseline: Dict[str, int] = {}
        for cycle in range(cycles):
            assert node.trigger_configure() == ok, f'configure failed in cycle {cycle}'
            assert node.trigger_activate() == ok, f'activate failed in cycle {cycle}'
            graph.wait_connected()
            out = graph.roundtrip(image_msg(image, frame_id=f'cycle {cycle}'))
            assert out.header.frame_id == f'cycle {cycle}'
            assert node.trigger_deactivate() == ok, f'deactivate failed in cycle {cycle}'
            assert node.trigger_cleanup() == ok, f'cleanup failed in cycle {cycle}'
            if cycle + 1 == WARM_UP_CYCLES:
                gc.collect()
                baseline = process_figures()
        gc.collect()
        final = process_figures()
        assert graph.thread_errors == []
        return {'baseline': baseline, 'final': final, 'cycles': cycles,
                'counters': node.counters.snapshot()}
    finally:
        graph.close()


@pytest.fixture(scope='module')
def small_image(sample_images: Any) -> Any:
    """Return bus.jpg at 320x240."""
    return cv2.resize(sample_images['bus.jpg'], (320, 240), interpolation=cv2.INTER_AREA)


def test_lifecycle_cycles_do_not_leak(rclpy_context: Any, yolo11n_pt: Path, cache_dir: Path,
                                      small_image: Any, request: Any) -> None:
    """40 cycles: threads, fds and RSS flat after the first 10."""
    figures = run_cycles(rclpy_context, yolo11n_pt, cache_dir, small_image, 40)
    check_flat(figures, request, f'{figures["cycles"]} lifecycle cycles')


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason='soak test: run with `make soak` (YOLO_JETSON_ROS_SOAK=1)')
def test_lifecycle_cycles_soak(rclpy_context: Any, yolo11n_pt: Path, cache_dir: Path,
                               small_image: Any, request: Any) -> None:
    """1000 cycles: threads, fds and RSS flat after the first 10."""
    figures = run_cycles(rclpy_context, yolo11n_pt, cache_dir, small_image, 1000)
    check_flat(figures, request, f'{figures["cycles"]} lifecycle cycles')
