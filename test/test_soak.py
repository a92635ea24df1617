# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Long runs of frames: flat memory, and a fast publisher never grows a queue.

Every frame is accounted for: ``received == processed + dropped + bad_input (+ pending <= 1)``.
The CI version runs 300 frames; the ``soak`` version 10 000 (only with
``YOLO_JETSON_ROS_SOAK=1``, as ``make soak`` sets it).
"""

import gc
import os
from pathlib import Path
import threading
import time
from typing import Any, Dict, Iterator

import cv2
import pytest

from reliability_support import (active_graph, check_flat, Graph, image_msg, process_figures,
                                 RSS_TOLERANCE)

pytestmark = pytest.mark.integration

SOAK = os.environ.get('YOLO_JETSON_ROS_SOAK') == '1'
WARM_UP_FRAMES = 50


@pytest.fixture
def graph(rclpy_context: Any, yolo11n_pt: Path, cache_dir: Path) -> Iterator[Graph]:
    """Yield an active node and its probe in one context."""
    # imgsz 320: 4x less inference per frame, more frames per second
    with active_graph(rclpy_context, yolo11n_pt, cache_dir, qos_reliability='reliable',
                      imgsz=320) as g:
        yield g


@pytest.fixture(scope='module')
def frames(sample_images: Any) -> Any:
    """Return two real photos at 640x480 to alternate."""
    return [cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)
            for img in sample_images.values()]


def pending(graph: Graph) -> int:
    """Return how many frames wait in the node's slots."""
    return sum(cam.pending is not None for cam in graph.node._cameras)


def assert_accounted(graph: Graph) -> Any:
    """Assert every received frame was processed, dropped, refused, or is the one pending."""
    with graph.node._frame_ready:  # the slot lock: a consistent picture
        s = graph.node.counters.snapshot()
        waiting = pending(graph)
    in_flight = s.received - (s.processed + s.dropped + s.bad_input + s.inference_errors)
    assert s.inference_errors == 0, s.last_error
    assert waiting <= 1, f'{waiting} frames queued: the slot must hold one'
    assert 0 <= in_flight - waiting <= 1, f'frames unaccounted for: {s}, pending {waiting}'
    return s


def run_frames(graph: Graph, images: Any, count: int) -> Dict[str, Any]:
    """Send ``count`` frames one after the other, each answered; return the figures."""
    baseline: Dict[str, int] = {}
    t0 = time.monotonic()
    for i in range(count):
        out = graph.roundtrip(image_msg(images[i % len(images)], frame_id=f'f{i}',
                                        stamp_ns=i * 33_000_000))
        assert out.header.frame_id == f'f{i}'
        if i + 1 == WARM_UP_FRAMES:
            del graph.outputs[:]
            gc.collect()
            baseline = process_figures()
            t0 = time.monotonic()
        elif len(graph.outputs) > 100:
            del graph.outputs[:]
    seconds = time.monotonic() - t0
    gc.collect()
    final = process_figures()
    s = assert_accounted(graph)
    assert s.processed == count and s.dropped == 0 and s.bad_input == 0
    return {'baseline': baseline, 'final': final, 'frames': count,
            'fps': (count - WARM_UP_FRAMES) / seconds}


def frames_label(figures: Dict[str, Any]) -> str:
    """Name a frame run in the reported figures."""
    return f'{figures["frames"]} frames at {figures["fps"]:.1f} frames/s'


def test_frames_keep_memory_flat(graph: Graph, frames: Any, request: Any) -> None:
    """300 frames: every one answered, threads/fds flat, RSS within 5 %."""
    figures = run_frames(graph, frames, 300)
    check_flat(figures, request, frames_label(figures))


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason='soak test: run with `make soak` (YOLO_JETSON_ROS_SOAK=1)')
def test_frames_soak(graph: Graph, frames: Any, request: Any) -> None:
    """10 000 frames: every one answered, threads/fds flat, RSS within 5 %."""
    figures = run_frames(graph, frames, 10_000)
    check_flat(figures, request, frames_label(figures))


def test_newest_frame_wins_while_the_worker_is_busy(graph: Graph, frames: Any) -> None:
    """
    Frames arriving while the worker is busy replace each other, and the drops are counted.

    The subscription's one-deep history holds the newest; the worker counts the frames it
    replaced from the gap in the publisher's sequence numbers when it takes the next one.
    """
    node = graph.node
    release = threading.Event()
    busy = threading.Event()
    detector = node.detector
    real = detector.detect_batch

    def slow_detect(*args: Any, **kwargs: Any) -> Any:
        busy.set()
        release.wait(60)
        return real(*args, **kwargs)

    detector.detect_batch = slow_detect
    try:
        graph.send(image_msg(frames[0], frame_id='first'))
        assert graph.spin_until(busy.is_set)  # the worker holds 'first'
        for i in range(20):
            graph.publisher.publish(image_msg(frames[1], frame_id=f'burst {i}'))
            graph.spin_for(0.01)
            assert pending(graph) == 0  # nothing queues in the node while it is busy
            assert_accounted(graph)
    finally:
        release.set()
    graph.settle()
    assert graph.spin_until(lambda: len(graph.outputs) >= 2)
    graph.spin_for(0.3)
    s = assert_accounted(graph)
    assert s.received == 21 and s.processed == 2 and s.dropped == 19, s
    assert [o.header.frame_id for o in graph.outputs] == ['first', 'burst 19'], \
        'the newest frame must win'
    cam = graph.node._cameras[0].counters.snapshot()
    assert (cam.received, cam.processed, cam.dropped) == (21, 2, 19)


@pytest.mark.parametrize('count', [300])
def test_fast_publisher_never_grows_a_queue(graph: Graph, frames: Any, count: int) -> None:
    """A publisher faster than inference: frames dropped, never queued, all accounted for."""
    node = graph.node
    baseline = None
    max_pending = 0
    for i in range(count):
        graph.publisher.publish(image_msg(frames[i % 2], frame_id=f'fast {i}'))
        graph.executor.spin_once(timeout_sec=0.001)
        max_pending = max(max_pending, pending(graph))
        assert_accounted(graph)
        if i == 50:
            gc.collect()
            baseline = process_figures()
    graph.settle()
    graph.spin_for(0.2)
    s = assert_accounted(graph)
    assert max_pending <= 1
    assert s.dropped > 0, f'the publisher never outran the node: {s}'
    assert s.received == s.processed + s.dropped + s.bad_input, s
    assert s.processed >= 1 and len(graph.outputs) == s.processed
    gc.collect()
    after = process_figures()
    assert baseline is not None and after['rss'] <= baseline['rss'] * RSS_TOLERANCE
    print(f'\nfast publisher: {count} published, {s.received} received, {s.processed} '
          f'processed, {s.dropped} dropped (node {node.get_name()})')
