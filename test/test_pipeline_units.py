# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Pre/post-processing against Ultralytics' own functions (the reference for YOLO semantics)."""

import numpy as np
import pytest

from yolo_jetson_ros.pipeline.detections import Detections
from yolo_jetson_ros.pipeline.postprocess import decode, is_end2end_output, nms_xyxy, NmsSettings
from yolo_jetson_ros.pipeline.preprocess import Letterboxer, LetterboxGeometry
from yolo_jetson_ros.stats import LogThrottle

torch = pytest.importorskip('torch', reason='torch not installed')
augment = pytest.importorskip('ultralytics.data.augment', reason='ultralytics not installed')
ul_nms = pytest.importorskip('ultralytics.utils.nms', reason='ultralytics not installed')
ul_ops = pytest.importorskip('ultralytics.utils.ops', reason='ultralytics not installed')

SIZES = [(1080, 810), (720, 1280), (480, 640), (1, 1), (33, 4000), (640, 640), (17, 5)]


@pytest.mark.parametrize('source_hw', SIZES)
@pytest.mark.parametrize('input_hw', [(640, 640), (320, 320), (384, 640)])
def test_letterbox_matches_ultralytics(source_hw, input_hw) -> None:
    """The letterboxed canvas is pixel-identical to Ultralytics' LetterBox."""
    rng = np.random.default_rng(sum(source_hw))
    image = rng.integers(0, 256, (*source_hw, 3), dtype=np.uint8)
    expected = augment.LetterBox(input_hw, auto=False, stride=32)(image=image)
    canvas, _ = Letterboxer(input_hw).letterbox(image)
    assert canvas.shape == expected.shape
    np.testing.assert_array_equal(canvas, expected)


def test_network_input_is_rgb_chw_in_unit_range() -> None:
    """prepare() writes RGB, CHW, /255 into the preallocated input, BGR or RGB source alike."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 10  # B
    image[..., 2] = 250  # R
    lb = Letterboxer((64, 64))
    buffer = lb.input
    lb.prepare(image, bgr=True)
    assert lb.input is buffer  # no reallocation
    np.testing.assert_allclose(lb.input[0, 0], 250 / 255, rtol=1e-6)
    np.testing.assert_allclose(lb.input[0, 2], 10 / 255, rtol=1e-6)
    lb.prepare(image[..., ::-1], bgr=False)
    np.testing.assert_allclose(lb.input[0, 0], 250 / 255, rtol=1e-6)


@pytest.mark.parametrize('source_hw', SIZES)
def test_boxes_back_to_source_match_scale_boxes(source_hw) -> None:
    """Network-input boxes map to the source image exactly as ultralytics' scale_boxes."""
    rng = np.random.default_rng(1)
    xy = rng.uniform(-20, 660, (50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 300, (50, 2))], 1).astype(np.float32)
    expected = ul_ops.scale_boxes((640, 640), torch.from_numpy(boxes.copy()), source_hw).numpy()
    ours = LetterboxGeometry.compute(source_hw, (640, 640)).boxes_to_source(boxes.copy())
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-3)


def _random_dense(rng: np.random.Generator, nc: int = 80, anchors: int = 2000) -> np.ndarray:
    """Build a (1, 4 + nc, A) output with clustered boxes so NMS has work to do."""
    centers = rng.uniform(50, 590, (12, 2))
    pick = rng.integers(0, 12, anchors)
    xy = centers[pick] + rng.normal(0, 6, (anchors, 2))
    wh = rng.uniform(20, 120, (anchors, 2))
    scores = rng.uniform(0, 1, (anchors, nc)) ** 6
    return np.concatenate([xy, wh, scores], 1).T[None].astype(np.float32)


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('kwargs', [
    {},
    {'conf': 0.05, 'iou': 0.5},
    {'conf': 0.3, 'multi_label': True},
    {'classes': [0, 3, 7]},
    {'agnostic': True, 'iou': 0.45},
    {'max_det': 5},
])
def test_dense_decode_matches_ultralytics_nms(seed, kwargs) -> None:
    """Decoding + NMS of a dense head equals ultralytics' non_max_suppression."""
    rng = np.random.default_rng(seed)
    output = _random_dense(rng)
    settings = NmsSettings(**kwargs)
    ours = decode(output, settings)[0]
    expected = ul_nms.non_max_suppression(
        torch.from_numpy(output), settings.conf, settings.iou, settings.classes,
        settings.agnostic, multi_label=settings.multi_label, max_det=settings.max_det)[0].numpy()
    assert ours.shape == expected.shape
    order_ours = np.lexsort((ours[:, 0], -ours[:, 4]))
    order_exp = np.lexsort((expected[:, 0], -expected[:, 4]))
    np.testing.assert_allclose(ours[order_ours], expected[order_exp], rtol=1e-5, atol=1e-3)


def test_end2end_decode_filters_score_class_and_max_det() -> None:
    """An end-to-end (B, 300, 6) output is thresholded, class-filtered and cut to max_det."""
    rng = np.random.default_rng(3)
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, :, :4] = np.sort(rng.uniform(0, 640, (300, 4)), axis=1)
    rows[0, :, 4] = np.sort(rng.uniform(0, 1, 300))[::-1]
    rows[0, :, 5] = rng.integers(0, 5, 300)
    assert is_end2end_output(rows.shape)
    settings = NmsSettings(conf=0.3, classes=[1, 2], max_det=10)
    ours = decode(rows, settings)[0]
    expected = ul_nms.non_max_suppression(torch.from_numpy(rows), 0.3, 0.7, [1, 2],
                                          max_det=10, end2end=True)[0].numpy()
    np.testing.assert_allclose(ours, expected)


def test_nms_xyxy_matches_torchvision() -> None:
    """Greedy NMS keeps the same boxes in the same order as torchvision.ops.nms."""
    torchvision = pytest.importorskip('torchvision', reason='torchvision not installed')
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 200, (400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (400, 2))], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 400).astype(np.float32)
    for threshold in (0.3, 0.5, 0.7):
        ours = nms_xyxy(boxes, scores, threshold, limit=10_000)
        expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                       threshold).numpy()
        np.testing.assert_array_equal(ours, expected)


def test_detections_center_size_conversion() -> None:
    """Detections convert xyxy to vision_msgs' center/size."""
    d = Detections(np.array([[10, 20, 50, 100]], np.float32), np.array([0.9], np.float32),
                   np.array([3]))
    np.testing.assert_allclose(d.centers_sizes(), [[30, 60, 40, 80]])
    assert len(d) == 1 and len(Detections.empty()) == 0


def test_log_throttle_lets_one_message_per_key_and_period_through() -> None:
    throttle = LogThrottle(period_s=5.0)
    assert throttle.due('bad_input /cam0', now=100.0)
    assert not throttle.due('bad_input /cam0', now=104.9)  # suppressed within the period
    assert throttle.due('bad_input /cam1', now=104.9)  # another key has its own period
    assert throttle.due('bad_input /cam0', now=105.0)  # due again once the period is over
    assert not throttle.due('bad_input /cam0', now=106.0)  # and the period restarted then
