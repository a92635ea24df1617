# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Helpers shared by the reliability tests: an in-process graph around one detector node.

The node under test and a probe node (image publisher, detections subscriber) live in one rclpy
context and are spun by one executor in the test's thread, so every callback exception surfaces
in the test. Every graph gets its own namespace: tests running beside each other (or another
checkout's tests in the same ROS domain) never see each other's topics.
"""

import contextlib
import itertools
import os
from pathlib import Path
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import psutil

_SEQUENCE = itertools.count()


def unique_namespace(prefix: str = 'rel') -> str:
    """Return a namespace no other graph of this or another process uses."""
    return f'/{prefix}_{os.getpid()}_{next(_SEQUENCE)}'


def node_parameters(model: Path, cache_dir: Path, **overrides: Any) -> List[Any]:
    """Return parameter overrides for an onnxruntime-on-CPU detector of ``model``."""
    from rclpy.parameter import Parameter
    values: Dict[str, Any] = {'model': str(model), 'backend': 'onnxruntime', 'device': 'cpu',
                              'engine_cache_dir': str(cache_dir)}
    values.update(overrides)
    return [Parameter(k, value=v) for k, v in values.items()]


def image_msg(image: np.ndarray, encoding: str = 'bgr8', frame_id: str = 'camera',
              stamp_ns: int = 0) -> Any:
    """Return a well-formed sensor_msgs/Image of an HxWx3 (or HxW) uint8 array."""
    from sensor_msgs.msg import Image
    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.strides[0])
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def raw_msg(encoding: str, height: int, width: int, step: int, data: bytes,
            frame_id: str = 'camera', stamp_ns: int = 0) -> Any:
    """Return a sensor_msgs/Image with exactly these (possibly inconsistent) fields."""
    from sensor_msgs.msg import Image
    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.encoding, msg.height, msg.width, msg.step = encoding, height, width, step
    msg.data = data
    return msg


class Graph:
    """A detector node plus a probe node in one context, spun from the test's thread."""

    def __init__(self, context: Any, node: Any, input_topic: str = 'image',
                 output_topic: str = 'detections_output') -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray
        self.context = context
        self.node = node
        self.probe = rclpy.create_node('probe', namespace=node.get_namespace(), context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self.executor.add_node(self.probe)
        image_qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE)
        self.publisher = self.probe.create_publisher(Image, input_topic, image_qos)
        self.outputs: List[Any] = []
        self.subscription = self.probe.create_subscription(
            Detection2DArray, output_topic, self.outputs.append, QoSProfile(depth=100))
        self.thread_errors: List[BaseException] = []
        self._old_hook = threading.excepthook
        threading.excepthook = self._thread_hook

    def _thread_hook(self, args: Any) -> None:
        self.thread_errors.append(args.exc_value)
        self._old_hook(args)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float = 60.0) -> bool:
        """
        Spin until ``predicate()`` holds; return whether it did before the deadline.

        The deadline only stops a broken run from hanging; no test asserts on timing.
        """
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def spin_for(self, seconds: float) -> None:
        """Spin for a while (to let messages that should not arrive have their chance)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)

    def wait_connected(self) -> None:
        """Wait until the probe's publisher sees the node's image subscription."""
        assert self.spin_until(lambda: self.publisher.get_subscription_count() > 0), \
            'the node never subscribed to the image topic'
        assert self.spin_until(lambda: self.subscription.get_publisher_count() > 0), \
            'the node never advertised its detections topic'

    def send(self, msg: Any) -> None:
        """Publish one image and spin until the node's subscription callback has taken it."""
        before = self.node.counters.snapshot().received
        self.publisher.publish(msg)
        assert self.spin_until(lambda: self.node.counters.snapshot().received > before), \
            'the node never received the frame'

    def settle(self) -> None:
        """Spin until the worker has finished every frame it was given."""
        def idle() -> bool:
            s = self.node.counters.snapshot()
            done = s.processed + s.dropped + s.bad_input + s.inference_errors
            return done >= s.received
        assert self.spin_until(idle), \
            f'the worker never caught up: {self.node.counters.snapshot()}'

    def roundtrip(self, msg: Any) -> Any:
        """Send a good frame and return the Detection2DArray published for it."""
        count = len(self.outputs)
        self.send(msg)
        assert self.spin_until(lambda: len(self.outputs) > count), \
            f'no detections published for a good frame: {self.node.counters.snapshot()}'
        return self.outputs[-1]

    def close(self) -> None:
        """Stop the node and tear the graph down (the context is the fixture's to shut down)."""
        threading.excepthook = self._old_hook
        self.node.stop()
        self.executor.remove_node(self.node)
        self.executor.remove_node(self.probe)
        self.probe.destroy_node()
        self.node.destroy_node()
        self.executor.shutdown()


RSS_TOLERANCE = 1.05  # resident memory may grow by 5 % at most after the warm-up


def check_flat(figures: Dict[str, Any], request: Any, what: str) -> None:
    """Report the figures; assert no growth in threads and fds, and RSS within the tolerance."""
    before, after = figures['baseline'], figures['final']
    report(request,
           f'{what}: threads {before["threads"]} -> {after["threads"]} (OS '
           f'{before["os_threads"]} -> {after["os_threads"]}), fds {before["fds"]} -> '
           f'{after["fds"]}, RSS {before["rss"] / 2**20:.1f} -> {after["rss"] / 2**20:.1f} MiB')
    assert after['threads'] <= before['threads'], f'Python threads leak ({what})'
    assert after['os_threads'] <= before['os_threads'], f'native threads leak ({what})'
    assert after['fds'] <= before['fds'], f'file descriptors leak ({what})'
    assert after['rss'] <= before['rss'] * RSS_TOLERANCE, f'RSS grows ({what})'


def process_figures() -> Dict[str, int]:
    """Return this process's thread count, open file descriptors and RSS in bytes."""
    proc = psutil.Process()
    return {'threads': threading.active_count(), 'os_threads': proc.num_threads(),
            'fds': proc.num_fds(), 'rss': proc.memory_info().rss}


def report(request: Any, line: str) -> None:
    """Show a figure in the test run's output even when the test passes (capture bypassed)."""
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin('terminalreporter')
    capture = plugins.get_plugin('capturemanager')
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f'[figures] {request.node.name}: {line}')


def chunks(total: int, size: int) -> Iterator[range]:
    """Yield ranges of ``size`` covering ``range(total)``."""
    for start in range(0, total, size):
        yield range(start, min(total, start + size))


def fresh_node(context: Any, model: Path, cache_dir: Path, namespace: Optional[str] = None,
               **overrides: Any) -> Any:
    """Create a YoloDetectorNode in its own namespace with onnxruntime-on-CPU parameters."""
    from yolo_jetson_ros.node.detector_node import YoloDetectorNode
    return YoloDetectorNode(namespace=namespace or unique_namespace(), context=context,
                            parameter_overrides=node_parameters(model, cache_dir, **overrides))


@contextlib.contextmanager
def active_graph(context: Any, model: Path, cache_dir: Path, **overrides: Any) -> Iterator[Graph]:
    """Yield a configured, active node with its probe; tear both down afterwards."""
    from rclpy.lifecycle import TransitionCallbackReturn
    graph = Graph(context, fresh_node(context, model, cache_dir, **overrides))
    try:
        assert graph.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert graph.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        graph.wait_connected()
        yield graph
    finally:
        graph.close()
