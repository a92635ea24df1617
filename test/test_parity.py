# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Our pipeline against Ultralytics' predict() and val() on real images and real weights.

The reference is ``YOLO(weights).predict(image, rect=False)``: the fixed imgsz x imgsz letterbox
that exported models (ONNX, TensorRT) need and that our every backend uses, so all backends give
the same boxes. (Ultralytics letterboxes .pt inputs to a minimal rectangle by default; that is a
different input, not a different model.)
"""

from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import pytest

from yolo_jetson_ros.pipeline.detections import Detections
from yolo_jetson_ros.pipeline.detector import build_detector, Detector, DetectorConfig
from yolo_jetson_ros.pipeline.postprocess import NmsSettings

ultralytics = pytest.importorskip('ultralytics', reason='ultralytics not installed')

BACKENDS = ('onnxruntime', 'torch')
COCO_SAMPLES = ('000000000009.jpg', '000000000025.jpg', '000000000030.jpg', '000000000034.jpg')


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the IoU matrix of two sets of xyxy boxes."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def assert_same_detections(ours: Detections, ref: Detections, what: str) -> None:
    """Assert same count and classes, each box IoU >= 0.99 and |score difference| <= 0.01."""
    assert len(ours) == len(ref), f'{what}: {len(ours)} detections vs {len(ref)} from Ultralytics'
    if not len(ref):
        return
    iou = box_iou(ours.boxes_xyxy, ref.boxes_xyxy)
    for i in range(len(ref)):  # greedy matching of each reference box by IoU, same class
        same_class = ours.class_ids == ref.class_ids[i]
        j = int(np.argmax(np.where(same_class, iou[:, i], -1)))
        assert same_class[j] and iou[j, i] >= 0.99, (
            f'{what}: reference box {i} (class {ref.class_ids[i]}, {ref.boxes_xyxy[i]}) best '
            f'match IoU {iou[j, i]:.4f}')
        assert abs(float(ours.scores[j]) - float(ref.scores[i])) <= 0.01, f'{what}: score'


def ultralytics_predict(weights: Path, image: np.ndarray, conf: float, **kwargs) -> Detections:
    """Run Ultralytics predict with our fixed-size letterbox and return its detections."""
    result = ultralytics.YOLO(str(weights), task='detect').predict(
        image, imgsz=640, conf=conf, rect=False, device='cpu', verbose=False, **kwargs)[0]
    return Detections(result.boxes.xyxy.numpy().astype(np.float32),
                      result.boxes.conf.numpy().astype(np.float32),
                      result.boxes.cls.numpy().astype(np.int64))


# name -> (weights fixture, DetectorConfig extras, Ultralytics predict extras)
MODELS = {
    'yolo11n': ('yolo11n_pt', {}, {}),
    'yolo26n': ('yolo26n_pt', {}, {}),  # Ultralytics' default: dense head + NMS
    'yolo26n-nms-free': ('yolo26n_pt', {'nms_free': True}, {'nms': False}),  # one-to-one head
    'yolov8n-untrained': ('untrained_yolov8n', {}, {}),
}


@pytest.fixture(scope='module')
def untrained_yolov8n(untrained_pt) -> Path:
    """Return the untrained YOLOv8n checkpoint."""
    return untrained_pt['yolov8n']


@pytest.fixture(scope='module')
def detectors(request, cache_dir) -> Dict[str, Dict[str, Detector]]:
    """Build each model on each backend once: {model: {backend: Detector}}."""
    out: Dict[str, Dict[str, Detector]] = {}
    for name, (fixture, extras, _) in MODELS.items():
        path = request.getfixturevalue(fixture)
        out[name] = {backend: build_detector(DetectorConfig(
            model=str(path), backend=backend, device='cpu', cache_dir=str(cache_dir), **extras))
            for backend in BACKENDS}
    return out


def _images(sample_images, coco128: Path) -> Dict[str, np.ndarray]:
    images = dict(sample_images)
    for name in COCO_SAMPLES:
        images[name] = cv2.imread(str(coco128 / 'images' / 'train2017' / name))
    return images


@pytest.mark.parametrize('model', ['yolo11n', 'yolo26n', 'yolo26n-nms-free'])
@pytest.mark.parametrize('backend', BACKENDS)
def test_detections_match_ultralytics_predict(model, backend, detectors, sample_images, coco128,
                                              request) -> None:
    """Same count/classes, IoU >= 0.99, |score diff| <= 0.01 on bus, zidane and coco128 images."""
    fixture, _, predict_extras = MODELS[model]
    weights = request.getfixturevalue(fixture)
    detector = detectors[model][backend]
    detector.settings = NmsSettings(conf=0.25, iou=0.7, max_det=300)
    total = 0
    for name, image in _images(sample_images, coco128).items():
        ours = detector.detect(image)
        ref = ultralytics_predict(weights, image, 0.25, **predict_extras)
        assert_same_detections(ours, ref, f'{model}/{backend}/{name}')
        total += len(ref)
    assert total > 0, 'the references found nothing: the comparison would be vacuous'


@pytest.mark.parametrize('backend', BACKENDS)
def test_untrained_yolov8n_raw_output_matches_ultralytics(backend, detectors, untrained_yolov8n,
                                                          sample_images) -> None:
    """
    An untrained YOLOv8n: our backend's raw head output equals Ultralytics' on the same input.

    Its scores are nearly all tied (no training), so comparing NMS survivors would only compare
    tie-breaking; the decode/NMS semantics are covered by test_pipeline_units.py.
    """
    import torch
    from ultralytics.nn.autobackend import AutoBackend
    detector = detectors['yolov8n-untrained'][backend]
    detector.letterboxer.prepare(sample_images['zidane.jpg'])
    ours = detector.backend.infer(detector.letterboxer.input).copy()
    reference_model = AutoBackend(str(untrained_yolov8n), device=torch.device('cpu'), fuse=True,
                                  verbose=False)
    with torch.no_grad():
        ref = reference_model(torch.from_numpy(detector.letterboxer.input))
    ref = (ref[0] if isinstance(ref, (list, tuple)) else ref).numpy()
    assert ours.shape == ref.shape == (1, 84, 8400)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-2)


def test_backends_agree_on_the_model_layout(detectors) -> None:
    """Both backends see the same layout; YOLO26's NMS-free head only when asked for."""
    for model, by_backend in detectors.items():
        layouts = {b: d.info.end2end for b, d in by_backend.items()}
        assert len(set(layouts.values())) == 1, f'{model}: {layouts}'
        assert [d.info.num_classes for d in by_backend.values()] == [80, 80]
    assert detectors['yolo26n-nms-free']['onnxruntime'].info.end2end
    assert not detectors['yolo26n']['onnxruntime'].info.end2end
    assert not detectors['yolo11n']['onnxruntime'].info.end2end


def test_rgb_input_gives_the_same_detections_as_bgr(detectors, sample_images) -> None:
    """An rgb8 camera yields the same boxes as the bgr8 one."""
    detector = detectors['yolo11n']['onnxruntime']
    detector.settings = NmsSettings()
    bgr = sample_images['bus.jpg']
    a = detector.detect(bgr, bgr=True)
    b = detector.detect(np.ascontiguousarray(bgr[..., ::-1]), bgr=False)
    assert_same_detections(b, a, 'rgb vs bgr')


def test_map_on_coco128_matches_ultralytics_val(detectors, coco128, cache_dir, tmp_path) -> None:
    """
    mAP50-95 on coco128 through our pipeline vs Ultralytics' val of the same ONNX model.

    Ultralytics' val loads images with INTER_AREA downscaling and scores unclipped boxes;
    predict() (and this node) letterboxes with INTER_LINEAR and clips boxes to the image. Done
    val's way, our decode/NMS/box mapping must agree within 0.003; the deployed (predict-style)
    pipeline is reported and held to 0.01 of it.
    """
    from yolo_jetson_ros.benchmark import evaluate_map, val_dataset
    detector = detectors['yolo11n']['onnxruntime']
    images = sorted((coco128 / 'images' / 'train2017').glob('*.jpg'))
    ours_val_loading = evaluate_map(detector, images, val_semantics=True)['map50_95']
    ours_deployed = evaluate_map(detector, images)['map50_95']
    onnx_path = next(Path(cache_dir).glob('yolo11n_coco128-*.onnx'))
    # the dataset linked into a temporary folder: val's label cache goes there, not into data
    data = val_dataset(images, detector.names, tmp_path / 'coco128')
    metrics = ultralytics.YOLO(str(onnx_path), task='detect').val(
        data=str(data), imgsz=640, batch=1, device='cpu', plots=False, verbose=False,
        save_json=False, project=str(tmp_path), name='val')
    reference = float(metrics.box.map)
    print(f'mAP50-95 on coco128: Ultralytics val (ONNX) {reference:.4f}; ours with val loading '
          f'{ours_val_loading:.4f}; ours as deployed (predict letterbox) {ours_deployed:.4f}')
    assert abs(ours_val_loading - reference) <= 0.003
    assert abs(ours_deployed - reference) <= 0.01
