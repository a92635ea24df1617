# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
A corpus of bad frames through a real rclpy graph: each is counted, none stops the node.

The node (onnxruntime on the CPU) and a probe publisher live in one process and one executor,
spun by the test's thread, so an exception escaping any callback fails the test. After every bad
frame a good one must still come back as a Detection2DArray.
"""

from typing import Any, Callable, Iterator, List, NamedTuple, Optional

import cv2
import numpy as np
import pytest

from reliability_support import active_graph, fresh_node, Graph, image_msg, raw_msg

pytestmark = pytest.mark.integration

# Every encoding sensor_msgs/image_encodings defines that the detector does not take, with the
# bytes per pixel that make its buffer otherwise consistent (so the encoding is the only fault)
UNSUPPORTED = {
    'rgb16': 6, 'rgba16': 8, 'bgr16': 6, 'bgra16': 8,
    '8UC2': 2, '8UC4': 4, '8SC1': 1, '8SC2': 2, '8SC3': 3, '8SC4': 4,
    '16UC1': 2, '16UC2': 4, '16UC3': 6, '16UC4': 8,
    '16SC1': 2, '16SC2': 4, '16SC3': 6, '16SC4': 8,
    '32SC1': 4, '32SC2': 8, '32SC3': 12, '32SC4': 16,
    '32FC1': 4, '32FC2': 8, '32FC3': 12, '32FC4': 16,
    '64FC1': 8, '64FC2': 16, '64FC3': 24, '64FC4': 32,
    'bayer_rggb16': 2, 'bayer_bggr16': 2, 'bayer_gbrg16': 2, 'bayer_grbg16': 2,
    'nv24': 3, 'mono1': 1,
    # not encodings at all, or near misses
    '': 3, 'BGR8': 3, 'RGB8': 3, 'jpeg': 3, 'h264': 3, 'bgr8 ': 3, 'bgr\x00': 3,
}


class Case(NamedTuple):
    """One bad frame and a fragment of the reason the node must give for it."""

    name: str
    make: Callable[[], Any]
    reason: str


def _bad(encoding: str, h: int, w: int, step: int,
         size: Optional[int] = None) -> Callable[[], Any]:
    return lambda: raw_msg(encoding, h, w, step, bytes(h * step if size is None else size),
                           frame_id='bad')


def _cases() -> List[Case]:
    cases = [Case(f'encoding[{enc!r}]', _bad(enc, 4, 4, 4 * bpp), 'encoding')
             for enc, bpp in UNSUPPORTED.items()]
    cases += [
        Case('width 0', _bad('bgr8', 8, 0, 0, 0), 'empty image'),
        Case('height 0', _bad('bgr8', 0, 8, 24, 0), 'empty image'),
        Case('width and height 0', _bad('bgr8', 0, 0, 0, 0), 'empty image'),
        Case('height 0 with data', _bad('bgr8', 0, 8, 24, 24), 'empty image'),
        Case('step < width*3', _bad('bgr8', 8, 8, 23, 8 * 23), 'step'),
        Case('step 0', _bad('bgr8', 8, 8, 0, 0), 'step'),
        Case('step = width (mono-sized) for rgb8', _bad('rgb8', 8, 8, 8, 64), 'step'),
        Case('mono16 step = width', _bad('mono16', 8, 8, 8, 64), 'step'),
        Case('data one byte short', _bad('bgr8', 8, 8, 24, 8 * 24 - 1), 'truncated'),
        Case('data half missing', _bad('bgr8', 8, 8, 24, 4 * 24), 'truncated'),
        Case('data empty', _bad('bgr8', 8, 8, 24, 0), 'truncated'),
        Case('data one byte long', _bad('bgr8', 8, 8, 24, 8 * 24 + 1), 'too long'),
        Case('data twice as long', _bad('bgr8', 8, 8, 24, 16 * 24), 'too long'),
        Case('padded step, data unpadded', _bad('bgr8', 8, 8, 32, 8 * 24), 'truncated'),
        Case('nv12 odd size', _bad('nv12', 7, 7, 7, 10 * 7), 'even'),
        Case('nv12 without chroma', _bad('nv12', 8, 8, 8, 64), 'truncated'),
        Case('yuv422 odd width', _bad('yuv422', 2, 3, 6), 'even'),
        Case('8192x8192 header, 1 KiB of data', _bad('bgr8', 8192, 8192, 8192 * 3, 1024),
             'truncated'),
        Case('huge step', _bad('bgr8', 2, 2, 2 ** 31, 64), 'truncated'),
    ]
    return cases


CASES = _cases()


@pytest.fixture(scope='module')
def graph(yolo11n_pt: Any, cache_dir: Any) -> Iterator[Graph]:
    """Give one configured, active node to the whole corpus (rclpy_context's pattern)."""
    rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (source tools/activate.sh)')
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context)
    try:
        with active_graph(context, yolo11n_pt, cache_dir, qos_reliability='reliable') as g:
            yield g
    finally:
        rclpy.try_shutdown(context=context)


@pytest.fixture(scope='module')
def good_image(sample_images: Any) -> np.ndarray:
    """Return a small real photo (bus.jpg at 320x240) the model finds objects in."""
    return cv2.resize(sample_images['bus.jpg'], (320, 240), interpolation=cv2.INTER_AREA)


def _camera_counters(node: Any) -> Any:
    return node._cameras[0].counters


def assert_still_detecting(graph: Graph, image: np.ndarray, tag: str) -> Any:
    """Send a good frame tagged ``tag``; assert its Detection2DArray comes back unchanged."""
    out = graph.roundtrip(image_msg(image, frame_id=tag))
    assert out.header.frame_id == tag, 'the output does not belong to the good frame'
    assert graph.thread_errors == [], f'an exception escaped a thread: {graph.thread_errors}'
    return out


@pytest.mark.parametrize('case', CASES, ids=[c.name for c in CASES])
def test_bad_frame_is_counted_and_the_node_keeps_detecting(graph: Graph, good_image: np.ndarray,
                                                           case: Case) -> None:
    """The bad frame counts as bad_input (node and camera) with a reason; nothing is published."""
    node = graph.node
    before, cam_before = node.counters.snapshot(), _camera_counters(node).snapshot()
    published = len(graph.outputs)
    graph.send(case.make())
    graph.settle()
    after, cam_after = node.counters.snapshot(), _camera_counters(node).snapshot()
    assert after.bad_input == before.bad_input + 1, after
    assert cam_after.bad_input == cam_before.bad_input + 1, cam_after
    assert after.inference_errors == before.inference_errors, after.last_error
    assert after.processed == before.processed
    assert case.reason in after.last_error, after.last_error
    assert len(graph.outputs) == published, 'a bad frame produced detections'
    assert_still_detecting(graph, good_image, f'good after {case.name}')


def test_bytes_that_are_no_image_never_reach_the_node(graph: Graph,
                                                      good_image: np.ndarray) -> None:
    """
    Serialized bytes that hold no whole Image, as a broken foreign writer may send them.

    The middleware drops them before the node (rmw_fastrtps' take returns nothing), so the node
    counts nothing for them, publishes nothing, and keeps detecting.
    """
    from rclpy.serialization import serialize_message
    node = graph.node
    whole = serialize_message(raw_msg('bgr8', 8, 8, 24, bytes(8 * 24), frame_id='bad'))
    before = node.counters.snapshot()
    published = len(graph.outputs)
    for data in (b'\x00\x01\x00\x00', whole[:-7], b'\x00\x17\x00\x00' + bytes(40)):
        graph.publisher.publish(data)
        graph.spin_for(0.2)
    after = node.counters.snapshot()
    assert (after.received, after.bad_input, after.inference_errors) == \
        (before.received, before.bad_input, before.inference_errors), after
    assert len(graph.outputs) == published
    assert_still_detecting(graph, good_image, 'good after undecodable bytes')


@pytest.mark.parametrize('shape', [(1, 1), (1, 640), (480, 1), (2, 2)])
def test_tiny_images_are_detected_on(graph: Graph, shape: Any) -> None:
    """1x1 (and 1-pixel-thin) images are valid: processed and answered, maybe with no boxes."""
    before = graph.node.counters.snapshot()
    image = np.full((*shape, 3), 127, np.uint8)
    out = graph.roundtrip(image_msg(image, frame_id=f'tiny {shape}'))
    assert out.header.frame_id == f'tiny {shape}'
    after = graph.node.counters.snapshot()
    assert after.processed == before.processed + 1 and after.bad_input == before.bad_input


def test_8192x8192_image_is_detected_on(graph: Graph, good_image: np.ndarray) -> None:
    """A 192 MiB 8192x8192 frame is letterboxed and answered like any other."""
    big = cv2.resize(good_image, (8192, 8192), interpolation=cv2.INTER_NEAREST)
    out = graph.roundtrip(image_msg(big, frame_id='huge'))
    del big
    assert out.header.frame_id == 'huge'
    assert len(out.detections) > 0, 'the upscaled bus photo should still show objects'
    for det in out.detections:  # boxes in the big image's pixels
        assert 0 <= det.bbox.center.position.x <= 8192 and 0 <= det.bbox.center.position.y <= 8192
    assert_still_detecting(graph, good_image, 'good after 8192x8192')


@pytest.mark.parametrize('encoding', ['mono8', 'rgb8', 'bgra8', 'mono16', 'nv12', 'yuv422',
                                      'bayer_rggb8'])
def test_other_supported_encodings_and_padding_are_detected_on(
        graph: Graph, encoding: str) -> None:
    """Supported encodings with a padded step are answered, not counted as bad."""
    from yolo_jetson_ros.pipeline.image_codec import ENCODINGS
    spec = ENCODINGS[encoding]
    h, w, pad = 48, 64, 16
    step = w * spec.channels * spec.bytes_per_channel + pad
    rows = h * 3 // 2 if encoding == 'nv12' else h
    before = graph.node.counters.snapshot()
    out = graph.roundtrip(raw_msg(encoding, h, w, step, bytes(rows * step), frame_id=encoding))
    assert out.header.frame_id == encoding
    assert graph.node.counters.snapshot().bad_input == before.bad_input


def test_empty_frame_id_is_warned_about_and_detected_on(graph: Graph,
                                                        good_image: np.ndarray) -> None:
    """An empty frame_id is counted (empty_frame_id) but the frame is still answered."""
    node = graph.node
    before = node.counters.count('empty_frame_id')
    out = graph.roundtrip(image_msg(good_image, frame_id=''))
    assert out.header.frame_id == ''
    assert len(out.detections) > 0
    assert node.counters.count('empty_frame_id') == before + 1
    assert _camera_counters(node).count('empty_frame_id') >= 1
    assert_still_detecting(graph, good_image, 'good after empty frame_id')


def test_timestamps_going_backwards_are_counted_and_kept(graph: Graph,
                                                         good_image: np.ndarray) -> None:
    """A stamp older than the previous frame's is counted; the output keeps the input's stamp."""
    node = graph.node
    stamps = [500_000_000_000, 400_000_000_000, 400_000_000_001, 0, 10]
    before = node.counters.count('stamp_backwards')
    for i, stamp in enumerate(stamps):
        out = graph.roundtrip(image_msg(good_image, frame_id=f'stamp {i}', stamp_ns=stamp))
        assert out.header.stamp.sec * 10 ** 9 + out.header.stamp.nanosec == stamp
    # 500 s -> 400 s and 400 s -> 0 went backwards; the others forwards (the first one too, as
    # the previous cases' frames carry stamp 0)
    assert node.counters.count('stamp_backwards') == before + 2
    assert graph.thread_errors == []


def test_frames_while_inactive_are_ignored(graph: Graph, good_image: np.ndarray) -> None:
    """Frames sent while configured-but-inactive are neither processed nor answered."""
    from rclpy.lifecycle import TransitionCallbackReturn
    node = graph.node
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    try:
        before = node.counters.snapshot()
        published = len(graph.outputs)
        for i in range(5):
            graph.publisher.publish(image_msg(good_image, frame_id=f'inactive {i}'))
            graph.spin_for(0.05)
        graph.spin_for(0.5)
        after = node.counters.snapshot()
        assert after.received == before.received and after.processed == before.processed
        assert len(graph.outputs) == published, 'an inactive node published detections'
    finally:
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    graph.wait_connected()
    assert_still_detecting(graph, good_image, 'good after reactivation')


def test_frames_while_unconfigured_are_ignored(rclpy_context: Any, yolo11n_pt: Any,
                                               cache_dir: Any, good_image: np.ndarray) -> None:
    """Frames published at an unconfigured node go nowhere, and configuring afterwards works."""
    from rclpy.lifecycle import TransitionCallbackReturn
    node = fresh_node(rclpy_context, yolo11n_pt, cache_dir, qos_reliability='reliable')
    graph = Graph(rclpy_context, node)
    try:
        for i in range(3):
            graph.publisher.publish(image_msg(good_image, frame_id=f'early {i}'))
            graph.spin_for(0.05)
        assert node.counters.snapshot().received == 0
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        graph.wait_connected()
        assert_still_detecting(graph, good_image, 'good after late activation')
    finally:
        graph.close()


def test_bad_input_is_logged_with_its_reason_and_throttled(rclpy_context: Any, yolo11n_pt: Any,
                                                           cache_dir: Any, good_image: np.ndarray,
                                                           capfd: Any) -> None:
    """The first bad frame logs topic, frame_id and reason; a flood of them logs only a few."""
    from rclpy.lifecycle import TransitionCallbackReturn
    node = fresh_node(rclpy_context, yolo11n_pt, cache_dir, qos_reliability='reliable')
    graph = Graph(rclpy_context, node)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        graph.wait_connected()
        capfd.readouterr()
        graph.send(raw_msg('32FC1', 4, 4, 16, bytes(64), frame_id='depth_frame'))
        graph.settle()
        err = ''.join(capfd.readouterr())
        lines = [line for line in err.splitlines() if 'dropping frame' in line]
        assert len(lines) == 1, err
        assert "'32FC1'" in lines[0] and 'depth_frame' in lines[0]
        assert node.resolve_topic_name('image') in lines[0]
        for i in range(30):
            graph.send(raw_msg('bgr8', 8, 8, 24, bytes(i), frame_id=f'flood {i}'))
        graph.settle()
        err = ''.join(capfd.readouterr())
        flood = [line for line in err.splitlines() if 'dropping frame' in line]
        assert len(flood) < 5, f'bad-input logging is not throttled: {len(flood)} lines'
        s = node.counters.snapshot()  # the flood outruns the worker: newest frame wins
        assert s.received == 31 and s.bad_input + s.dropped == 31 and s.processed == 0, s
        assert_still_detecting(graph, good_image, 'good after flood')
    finally:
        graph.close()


def _compressed_supported() -> Optional[str]:
    from yolo_jetson_ros.parameters import BY_NAME
    if 'input_transport' not in BY_NAME:
        return 'the input_transport parameter does not exist (yet)'
    return None


COMPRESSED_CASES = [
    ('empty payload', 'jpeg', lambda jpg: b'', True),
    ('random bytes', 'jpeg', lambda jpg: bytes(np.random.default_rng(0).integers(
        0, 256, 4096, dtype=np.uint8)), True),
    ('jpeg header only', 'jpeg', lambda jpg: jpg[:20], True),
    ('png signature only', 'png', lambda jpg: b'\x89PNG\r\n\x1a\n', True),
    ('text', 'jpeg', lambda jpg: b'this is not an image', True),
    ('truncated jpeg', 'jpeg', lambda jpg: jpg[:len(jpg) // 2], False),  # may decode partially
    ('jpeg with zeroed middle', 'jpeg',
     lambda jpg: jpg[:200] + bytes(len(jpg) - 400) + jpg[-200:], False),
    ('empty format string', '', lambda jpg: b'\x00' * 16, True),
]


@pytest.mark.parametrize('name,fmt,corrupt,always_bad', COMPRESSED_CASES,
                         ids=[c[0] for c in COMPRESSED_CASES])
def test_corrupt_compressed_images(rclpy_context: Any, yolo11n_pt: Any, cache_dir: Any,
                                   good_image: np.ndarray, name: str, fmt: str,
                                   corrupt: Callable[[bytes], bytes], always_bad: bool) -> None:
    """Corrupt/empty CompressedImage payloads are bad_input (or decoded), never a crash."""
    reason = _compressed_supported()
    if reason:
        pytest.skip(reason)
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import CompressedImage
    node = fresh_node(rclpy_context, yolo11n_pt, cache_dir, qos_reliability='reliable',
                      input_transport='compressed')
    graph = Graph(rclpy_context, node)
    try:
        publisher = graph.probe.create_publisher(
            CompressedImage, 'image/compressed',
            QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert graph.spin_until(lambda: publisher.get_subscription_count() > 0)
        assert graph.spin_until(lambda: graph.subscription.get_publisher_count() > 0)
        jpg = cv2.imencode('.jpg', good_image)[1].tobytes()

        def send(data: bytes, fmt: str, frame_id: str) -> None:
            msg = CompressedImage()
            msg.header.frame_id, msg.format, msg.data = frame_id, fmt, data
            before = node.counters.snapshot().received
            publisher.publish(msg)
            assert graph.spin_until(lambda: node.counters.snapshot().received > before)

        send(corrupt(jpg), fmt, 'corrupt')
        graph.settle()
        s = node.counters.snapshot()
        assert s.inference_errors == 0, s.last_error
        assert s.bad_input + s.processed == 1
        if always_bad:
            assert s.bad_input == 1, s
        published = len(graph.outputs)
        send(jpg, 'jpeg', 'good')
        assert graph.spin_until(lambda: len(graph.outputs) > published)
        assert graph.outputs[-1].header.frame_id == 'good'
        assert len(graph.outputs[-1].detections) > 0
        assert graph.thread_errors == []
    finally:
        graph.close()
