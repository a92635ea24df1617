# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
ROS 2 integration features of the detector node on a real rclpy graph and a real model.

LabelInfo, the debug image, /diagnostics, tracking, compressed input, QoS matching and live
parameter tuning. The node and a probe node share one rclpy context and one
SingleThreadedExecutor spun by the test; the model is yolo11n_coco128.pt on ONNX Runtime (CPU).
Waits are loops with generous timeouts that fail naming what never arrived.
"""

import itertools
import os
from pathlib import Path
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (qos_profile_sensor_data, QoSDurabilityPolicy, QoSProfile,
                       QoSReliabilityPolicy)
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray
import yaml
from yolo_jetson_ros.node.conversions import HAVE_LABEL_INFO, msg_to_detections
from yolo_jetson_ros.node.detector_node import YoloDetectorNode
from yolo_jetson_ros.node.diagnostics import DetectorDescription, HealthReporter
from yolo_jetson_ros.parameters import PARAMETERS, render_markdown, render_yaml
from yolo_jetson_ros.stats import FrameCounters

try:  # rclpy >= Iron
    from rclpy.event_handler import PublisherEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import PublisherEventCallbacks  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60.0
_SEQ = itertools.count()
# declared by rclpy itself on every node
ROS_OWN_PARAMETERS = {'use_sim_time', 'start_type_description_service'}
PERSON = 0  # yolo11n_coco128 finds 2 persons and class 42 in bus.jpg


class Graph:
    """The detector and a probe node in one context, spun by the test's executor."""

    def __init__(self, context: Any, model: Path, cache_dir: Path, **overrides: Any) -> None:
        self.namespace = f'/feat_{os.getpid()}_{next(_SEQ)}'
        values: Dict[str, Any] = {'model': str(model), 'backend': 'onnxruntime', 'device': 'cpu',
                                  'engine_cache_dir': str(cache_dir), 'threads': 1}
        values.update(overrides)
        self.node = YoloDetectorNode(
            namespace=self.namespace, context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        self.probe = rclpy.create_node('probe', namespace=self.namespace, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.detections: List[Detection2DArray] = []

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> List[Any]:
        """Collect the messages of ``topic`` into the returned list."""
        inbox: List[Any] = []
        self.probe.create_subscription(msg_type, topic, inbox.append, qos)
        return inbox

    def start(self, activate: bool = True) -> None:
        """Configure (and activate) the detector, asserting success."""
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS, 'configure'
        if activate:
            assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS, 'activate'
            self.detections = self.subscribe(Detection2DArray, 'detections_output')

    def wait_for(self, predicate: Callable[[], bool], what: str,
                 timeout_s: float = TIMEOUT_S) -> None:
        """Spin until ``predicate()`` holds; fail naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f'{what} did not happen within {timeout_s:.0f} s')
            self.executor.spin_once(timeout_sec=0.05)

    def wait_subscribed(self, publisher: Any, what: str) -> None:
        """Wait until ``publisher`` is matched by at least one subscription."""
        self.wait_for(lambda: publisher.get_subscription_count() > 0, f'{what} matched')

    def detect(self, publisher: Any, msg: Any) -> Detection2DArray:
        """Publish one frame and return the Detection2DArray answering it."""
        before = len(self.detections)
        publisher.publish(msg)
        self.wait_for(lambda: len(self.detections) > before, 'detections for the frame')
        return self.detections[-1]

    def close(self) -> None:
        """Stop and destroy both nodes."""
        self.node.stop()
        self.executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def graph_factory(rclpy_context: Any, yolo11n_pt: Path, cache_dir: Path):
    """Return a factory of :class:`Graph` objects closed at the end of the test."""
    graphs: List[Graph] = []

    def make(**overrides: Any) -> Graph:
        graph = Graph(rclpy_context, yolo11n_pt, cache_dir, **overrides)
        graphs.append(graph)
        return graph

    yield make
    for graph in graphs:
        graph.close()


def image_msg(image: np.ndarray, frame_id: str = 'camera_optical', sec: int = 7) -> Image:
    """Return a bgr8 sensor_msgs/Image of ``image``."""
    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = sec
    msg.height, msg.width = image.shape[:2]
    msg.encoding = 'bgr8'
    msg.step = image.shape[1] * 3
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def classes_of(msg: Detection2DArray) -> List[int]:
    """Return the class indices of a Detection2DArray."""
    return [int(d.results[0].hypothesis.class_id) for d in msg.detections]


# ---------------------------------------------------------------------------- LabelInfo
@pytest.mark.skipif(not HAVE_LABEL_INFO, reason='vision_msgs < 4.1 has no LabelInfo')
def test_label_info_is_latched_and_follows_conf(graph_factory) -> None:
    from vision_msgs.msg import LabelInfo
    graph = graph_factory()
    graph.start(activate=False)
    latched = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    inbox = graph.subscribe(LabelInfo, 'label_info', latched)  # joins after the publish
    graph.wait_for(lambda: len(inbox) >= 1, 'the latched LabelInfo')
    names = graph.node.detector.names
    info = inbox[-1]
    assert [(c.class_id, c.class_name) for c in info.class_map] == sorted(names.items())
    assert info.threshold == pytest.approx(0.25)
    result = graph.node.set_parameters([Parameter('conf', value=0.5)])[0]
    assert result.successful, result.reason
    graph.wait_for(lambda: inbox[-1].threshold == pytest.approx(0.5), 'LabelInfo with conf 0.5')


# ---------------------------------------------------------------------------- debug image
def test_debug_image_only_when_enabled(graph_factory, sample_images) -> None:
    graph = graph_factory()
    graph.start()
    bus = sample_images['bus.jpg']
    images = graph.subscribe(Image, 'detections_image', qos_profile_sensor_data)
    pub = graph.probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    graph.wait_subscribed(pub, 'image publisher')
    graph.detect(pub, image_msg(bus))
    graph.detect(pub, image_msg(bus))
    assert images == [], 'publish_debug_image is false, yet a debug image came'
    assert graph.node.set_parameters([Parameter('publish_debug_image', value=True)])[0].successful
    sent = image_msg(bus, frame_id='cam_debug', sec=42)
    graph.detect(pub, sent)
    graph.wait_for(lambda: len(images) >= 1, 'an annotated debug image')
    debug = images[-1]
    assert debug.encoding == 'bgr8'
    assert (debug.height, debug.width) == bus.shape[:2]
    assert debug.header.frame_id == 'cam_debug' and debug.header.stamp.sec == 42
    drawn = np.frombuffer(debug.data, np.uint8).reshape(bus.shape)
    assert not np.array_equal(drawn, bus), 'no boxes were drawn'


# ---------------------------------------------------------------------------- diagnostics
def test_diagnostics_report_state_and_counters(graph_factory, sample_images) -> None:
    graph = graph_factory()
    inbox = graph.subscribe(DiagnosticArray, '/diagnostics')
    fqn = graph.node.get_fully_qualified_name()

    def ours() -> List[Dict[str, Any]]:
        out = []
        for array in inbox:
            for status in array.status:
                if status.name.startswith(f'{fqn}: '):
                    out.append({'level': status.level, 'message': status.message,
                                **{kv.key: kv.value for kv in status.values}})
        return out

    graph.wait_for(lambda: any(s['state'] == 'unconfigured' for s in ours()),
                   f'an unconfigured diagnostics status of {fqn}')
    assert ours()[-1]['level'] == DiagnosticStatus.OK
    graph.start()
    pub = graph.probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    graph.wait_subscribed(pub, 'image publisher')
    graph.detect(pub, image_msg(sample_images['bus.jpg']))
    graph.wait_for(lambda: any(s['state'] == 'active' and int(s['frames_processed']) >= 1
                               for s in ours()), 'an active diagnostics status with a frame')
    status = [s for s in ours() if s['state'] == 'active'][-1]
    assert status['backend'] == 'onnxruntime' and status['device'] == 'cpu'
    assert status['precision'] == 'fp32' and status['model'].startswith('yolo11n_coco128')
    assert float(status['latency_p50_ms']) > 0 and float(status['latency_p99_ms']) > 0
    # the part of the latency spent in a batch window before inference: part of it, never more
    assert 0 <= float(status['queue_wait_p50_ms']) <= float(status['latency_p50_ms'])
    for key in ('input_rate_hz', 'processed_rate_hz', 'frames_dropped', 'bad_input',
                'last_error'):
        assert key in status


def test_health_levels() -> None:
    counters = FrameCounters()
    reporter = HealthReporter('node: yolo detector')
    describe = DetectorDescription('onnxruntime', 'cpu', 'fp32', 'm.onnx')
    assert reporter.status(counters, 'active', describe).level == DiagnosticStatus.OK
    counters.add('received', 10)
    counters.add('dropped', 5)
    warn = reporter.status(counters, 'active', describe)
    assert warn.level == DiagnosticStatus.WARN and 'dropping 50%' in warn.message
    assert reporter.status(counters, 'active', describe).level == DiagnosticStatus.OK
    counters.error('bad_input', 'unsupported encoding')
    warn = reporter.status(counters, 'active', describe)
    assert warn.level == DiagnosticStatus.WARN and 'unsupported encoding' in warn.message
    error = reporter.status(counters, 'unconfigured', describe, failure='autostart failed')
    assert error.level == DiagnosticStatus.ERROR and error.message == 'autostart failed'


# ---------------------------------------------------------------------------- tracking
@pytest.mark.parametrize('tracker', ['bytetrack', 'botsort'])
def test_tracking_keeps_ids_over_frames(graph_factory, sample_images, tracker: str) -> None:
    pytest.importorskip('lap', reason='lap not installed (Ultralytics trackers need lap>=0.5.12)')
    graph = graph_factory(tracker=tracker)
    graph.start()
    pub = graph.probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    graph.wait_subscribed(pub, 'image publisher')
    first = graph.detect(pub, image_msg(sample_images['bus.jpg']))
    second = graph.detect(pub, image_msg(sample_images['bus.jpg']))
    ids_first = [d.id for d in first.detections]
    ids_second = [d.id for d in second.detections]
    assert any(ids_first), 'no detection carries a track id'
    tracked = [i for i in ids_first if i]
    assert len(set(tracked)) == len(tracked), f'duplicate track ids {ids_first}'
    assert ids_second == ids_first


def test_tracker_parameter_is_validated(graph_factory) -> None:
    graph = graph_factory()
    result = graph.node.set_parameters([Parameter('tracker', value='sort')])[0]
    assert not result.successful
    assert 'tracker' in result.reason and 'bytetrack' in result.reason


# ---------------------------------------------------------------------------- compressed input
def test_compressed_input_and_corrupt_payload(graph_factory, sample_images) -> None:
    graph = graph_factory(input_transport='compressed')
    graph.start()
    pub = graph.probe.create_publisher(CompressedImage, 'image/compressed',
                                       qos_profile_sensor_data)
    graph.wait_subscribed(pub, 'compressed image publisher')
    ok, jpeg = cv2.imencode('.jpg', sample_images['bus.jpg'])
    assert ok
    good = CompressedImage(format='jpeg', data=jpeg.tobytes())
    good.header.frame_id = 'cam_jpeg'
    result = graph.detect(pub, good)
    assert result.header.frame_id == 'cam_jpeg'
    assert PERSON in classes_of(result)
    for payload in (b'', b'\xff\xd8 this is not a jpeg'):
        before = graph.node.counters.snapshot().bad_input
        pub.publish(CompressedImage(format='jpeg', data=payload))
        graph.wait_for(lambda: graph.node.counters.snapshot().bad_input > before,
                       'the corrupt frame counted as bad input')
    assert 'compressed image' in graph.node.counters.snapshot().last_error
    assert classes_of(graph.detect(pub, good)), 'the node stopped detecting after bad frames'


# ---------------------------------------------------------------------------- QoS
def test_reliable_subscription_reports_best_effort_publisher(graph_factory) -> None:
    graph = graph_factory(qos_reliability='reliable')
    events: List[Any] = []
    original = graph.node._on_incompatible_qos

    def spy(cam: Any, event: Any) -> None:
        events.append(event)
        original(cam, event)  # the node's warning must not raise either

    graph.node._on_incompatible_qos = spy
    graph.start()
    publisher_events: List[Any] = []
    graph.probe.create_publisher(
        Image, 'image', qos_profile_sensor_data,
        event_callbacks=PublisherEventCallbacks(incompatible_qos=publisher_events.append))
    graph.wait_for(lambda: events and publisher_events, 'the incompatible-QoS events')
    assert events[0].total_count >= 1


def test_reliable_publisher_reaches_best_effort_subscription(
        graph_factory, sample_images) -> None:
    graph = graph_factory()  # qos_reliability default: best_effort
    graph.start()
    pub = graph.probe.create_publisher(Image, 'image', QoSProfile(depth=10))  # reliable
    graph.wait_subscribed(pub, 'reliable image publisher')
    assert PERSON in classes_of(graph.detect(pub, image_msg(sample_images['bus.jpg'])))


# ---------------------------------------------------------------------------- live tuning
def test_live_thresholds_apply_next_frame(graph_factory, sample_images) -> None:
    graph = graph_factory()
    graph.start()
    pub = graph.probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    graph.wait_subscribed(pub, 'image publisher')
    frame = image_msg(sample_images['bus.jpg'])

    def detect_with(**values: Any) -> Detection2DArray:
        results = graph.node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        assert all(r.successful for r in results), [r.reason for r in results]
        return graph.detect(pub, frame)

    baseline = detect_with()
    assert len(baseline.detections) >= 3
    other = next(c for c in classes_of(baseline) if c != PERSON)
    other_name = graph.node.detector.names[other]
    assert set(classes_of(detect_with(classes=['person']))) == {PERSON}
    assert set(classes_of(detect_with(classes=[other]))) == {other}
    assert set(classes_of(detect_with(classes=f'{other_name},person'))) == {PERSON, other}
    assert len(detect_with(classes='', max_det=1).detections) == 1
    high = detect_with(max_det=300, conf=0.6)
    assert all(d.results[0].hypothesis.score >= 0.6 for d in high.detections)
    assert len(high.detections) < len(baseline.detections)
    assert len(detect_with(conf=0.25, agnostic_nms=True).detections) >= 1
    boxes = msg_to_detections(detect_with(agnostic_nms=False, iou=0.1)).boxes_xyxy
    assert len(boxes) >= 1


REJECTIONS = [
    # (parameter, value, words a person needs in the reason)
    ('conf', 1.5, ['conf', '1.0']),
    ('max_det', 0, ['max_det', '1']),
    ('conf', 'high', ['conf', 'number', "'high'"]),
    ('imgsz', 640.0, ['imgsz', 'integer']),
    ('agnostic_nms', 1, ['agnostic_nms', 'true or false']),
    ('classes', ['giraffe_unicorn'], ['classes', 'giraffe_unicorn']),
    ('classes', [-1], ['classes', 'negative']),
]
STRUCTURAL = [(s.name, s.default) for s in PARAMETERS if s.structural and not s.read_only]


def test_rejections_explain_themselves(graph_factory) -> None:
    graph = graph_factory()
    graph.start(activate=False)
    for name, value, words in REJECTIONS:
        result = graph.node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful, f'{name}={value!r} was accepted'
        for word in words:
            assert word in result.reason, f'{name}={value!r}: {result.reason!r} lacks {word!r}'
    for name, default in STRUCTURAL:
        result = graph.node.set_parameters([Parameter(name, value=default)])[0]
        assert not result.successful, f'{name} changed while configured'
        assert name in result.reason and 'configure' in result.reason, result.reason
        assert 'clean up' in result.reason, result.reason
    result = graph.node.set_parameters([Parameter('autostart', value=True)])[0]
    assert not result.successful and 'read-only' in result.reason.lower(), result.reason


def test_config_yaml_and_readme_table_match_declared_parameters(rclpy_context) -> None:
    node = YoloDetectorNode(namespace=f'/feat_{os.getpid()}_{next(_SEQ)}', context=rclpy_context)
    try:
        names = [n for n in node._parameters if n not in ROS_OWN_PARAMETERS]
        declared = {n: node.get_parameter(n).value for n in names}
        descriptions = {n: d.description for n, d in
                        zip(names, node.describe_parameters(names))}
    finally:
        node.destroy_node()
    ours = {s.name for s in PARAMETERS}
    assert set(declared) == ours, 'declared parameters differ from parameters.PARAMETERS'
    assert all(descriptions[s.name] == s.description for s in PARAMETERS)
    config = yaml.safe_load((REPO / 'config' / 'detector.yaml').read_text())
    values = config['/**']['ros__parameters']
    assert set(values) == ours, 'config/detector.yaml: regenerate with ' \
        '`python -m yolo_jetson_ros.parameters yaml > config/detector.yaml`'
    defaults = {s.name: s.default for s in PARAMETERS}
    for name, value in values.items():
        assert value == defaults[name] == _plain(declared[name]), name
    assert (REPO / 'config' / 'detector.yaml').read_text() == render_yaml()
    table = render_markdown()
    for name in ours:
        assert f'| `{name}` |' in table
    readme = REPO / 'README.md'
    if readme.exists() and '| parameter | default |' in readme.read_text():
        assert table in readme.read_text(), 'README parameter table: regenerate with ' \
            '`python -m yolo_jetson_ros.parameters`'


def _plain(value: Any) -> Optional[Any]:
    return list(value) if isinstance(value, (tuple, list)) else value


def test_bad_values_from_a_parameter_file_fall_back_to_defaults(rclpy_context) -> None:
    """Out-of-range or mistyped start-up values never crash the node: defaults, with an error."""
    overrides = [Parameter('imgsz', value=641), Parameter('backend', value='cuda'),
                 Parameter('iou', value='x'), Parameter('conf', value=1)]
    node = YoloDetectorNode(namespace=f'/feat_{os.getpid()}_{next(_SEQ)}', context=rclpy_context,
                            parameter_overrides=overrides)
    try:
        assert node.param('imgsz') == 640 and node.param('backend') == 'auto'
        assert node.param('iou') == 0.7
        assert node.param('conf') == 1  # an integer where a float is expected is fine
    finally:
        node.destroy_node()


def test_one_worker_thread_warms_up_and_infers_for_the_life_of_the_node(
        graph_factory: Callable[..., Graph], sample_images: Dict[str, np.ndarray]) -> None:
    # torch keeps cuDNN plans and cuBLAS handles per thread: the thread that warmed up must be
    # the one that infers, across deactivate/activate and cleanup/configure; stop() ends it
    graph = graph_factory()
    assert graph.node._worker is None  # nothing runs before the first configure
    graph.start(activate=False)
    worker = graph.node._worker
    assert worker is not None and worker.is_alive() and worker.name == 'yolo_worker'
    pub = graph.probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    for cycle in range(2):
        if cycle:
            assert graph.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert graph.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        graph.detections = graph.subscribe(Detection2DArray, 'detections_output')
        graph.wait_subscribed(pub, 'image publisher')
        assert PERSON in classes_of(graph.detect(pub, image_msg(sample_images['bus.jpg'])))
        assert graph.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert graph.node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert graph.node._worker is worker and worker.is_alive()
    assert sum(t.name == 'yolo_worker' for t in threading.enumerate()) == 1
    graph.node.stop()
    assert graph.node._worker is None and not worker.is_alive()
