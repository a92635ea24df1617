# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The TensorRT engine path, tested without TensorRT.

No machine here has TensorRT or a GPU. ``fake_tensorrt`` (a FAKE module, see its docstring)
stands in for ``tensorrt``; its plans run the real Ultralytics ONNX export of the trained YOLO11n
weights with ONNX Runtime, so detections are real. ``run_export`` is replaced by
:class:`FakeExporter` where a real engine build would need TensorRT: it writes what Ultralytics'
``export(format='engine')`` writes (the metadata header, byte for byte as ``onnx2engine`` does,
then a plan). The ONNX export itself is real and checked against Ultralytics' predict. The last
test runs the real seam and needs the real TensorRT bindings and a GPU.
"""

import functools
import json
import multiprocessing
import os
from pathlib import Path
from signal import SIGKILL
from sys import executable as python_executable, modules as loaded_modules
from time import monotonic, sleep, time_ns
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import fake_tensorrt

import numpy as np

import pytest

from yolo_jetson_ros import build_engine
from yolo_jetson_ros.pipeline import export as export_module
from yolo_jetson_ros.pipeline import tensorrt_runtime
from yolo_jetson_ros.pipeline.backends import tensorrt_backend
from yolo_jetson_ros.pipeline.backends.base import BackendError
from yolo_jetson_ros.pipeline.backends.onnxruntime_backend import OnnxRuntimeBackend
from yolo_jetson_ros.pipeline.backends.tensorrt_backend import (
    calibration_identity, check_stack_supports, create_tensorrt_backend, dla_core_count,
    engine_key_fields, prepare_engine, validate_tensorrt_request)
from yolo_jetson_ros.pipeline.cache import ArtifactCache, key_of
from yolo_jetson_ros.pipeline.detections import Detections
from yolo_jetson_ros.pipeline.detector import Detector, DetectorConfig
from yolo_jetson_ros.pipeline.export import ExportRequest, run_export
from yolo_jetson_ros.pipeline.models import ResolvedModel, sha256_of
from yolo_jetson_ros.pipeline.tensorrt_runtime import (
    DeviceIdentity, EngineFileError, StaleEngineError, TensorRTCapabilities, TensorRTRunner)

FAKE_GPU = DeviceIdentity('NVIDIA Orin (fake)', '8.7', '')
JETPACK6_TRT = '10.3.0.30'
IMAGES = {'name': 'images', 'dtype': 'FLOAT'}
REAL_TRT_REASON = 'TensorRT Python bindings not installed (no TensorRT on this machine)'


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def ultralytics_engine_bytes(metadata: Dict[str, Any], plan: bytes) -> bytes:
    """Return an engine file exactly as Ultralytics' onnx2engine writes it (independent code)."""
    meta = json.dumps(metadata)
    return len(meta).to_bytes(4, byteorder='little', signed=True) + meta.encode() + plan


def anchors(imgsz: int) -> int:
    """Return the anchor count of a stride 8/16/32 YOLO head at ``imgsz``."""
    return sum((imgsz // s) ** 2 for s in (8, 16, 32))


def dense_plan(imgsz: int = 640, batch: int = 1, onnx: Optional[Path] = None,
               dla_core: Optional[int] = None, version: Optional[str] = None) -> bytes:
    """Return a fake plan with YOLO11n's I/O (ONNX-backed at 640, zeros otherwise)."""
    return fake_tensorrt._make_plan(
        [dict(IMAGES, shape=[batch, 3, imgsz, imgsz])],
        [{'name': 'output0', 'shape': [batch, 84, anchors(imgsz)], 'dtype': 'FLOAT'}],
        onnx=str(onnx) if onnx else None, dla_core=dla_core, version=version)


def ultralytics_metadata(names: Dict[int, str], imgsz: int, batch: int, half: bool, int8: bool,
                         dla: Optional[int]) -> Dict[str, Any]:
    """Return the metadata dict Ultralytics' exporter puts in front of an engine."""
    metadata: Dict[str, Any] = {
        'description': 'Ultralytics YOLO11n model trained on coco128.yaml',
        'author': 'Ultralytics',
        'date': '2026-01-01T00:00:00+00:00', 'version': '8.4.190',
        'license': 'AGPL-3.0 License (https://ultralytics.com/license)',
        'docs': 'https://docs.ultralytics.com', 'stride': 32, 'task': 'detect', 'head': 'Detect',
        'batch': batch, 'imgsz': [imgsz, imgsz], 'names': names,
        'args': {'batch': batch, 'dynamic': False, 'half': half, 'int8': int8, 'nms': None},
        'channels': 3, 'end2end': False}
    if dla is not None:
        metadata['dla'] = str(dla)
    return metadata


class FakeExporter:
    """
    Replaces ``run_export`` where a real engine build needs TensorRT and a GPU.

    Writes the Ultralytics header and a fake plan for the fake TensorRT version currently
    installed. ``mode``: 'ok'; 'garbage' (bytes TensorRT refuses); 'hang' (write half a file,
    touch ``started``, then wait to be killed). ``counter``: a file that gets one line per build
    (counts across processes).
    """

    def __init__(self, onnx: Path, names: Dict[int, str], mode: str = 'ok',
                 counter: Optional[Path] = None, delay_s: float = 0.0,
                 started: Optional[Path] = None):
        """Remember what to build from."""
        self.onnx = onnx
        self.names = names
        self.mode = mode
        self.counter = counter
        self.delay_s = delay_s
        self.started = started
        self.requests: List[ExportRequest] = []

    @property
    def calls(self) -> int:
        """Return how many builds ran in this process."""
        return len(self.requests)

    def __call__(self, request: ExportRequest, out: Path, log: Callable[[str], None],
                 timeout_s: Optional[float] = None) -> Dict[str, Any]:
        """Build a fake engine at ``out`` for ``request``."""
        self.requests.append(request)
        if self.counter is not None:
            with open(self.counter, 'a') as f:
                f.write(f'{os.getpid()}\n')
        log('fake TensorRT build started')
        dla = int(request.device.split(':')[1]) if request.device.startswith('dla') else None
        onnx = self.onnx if (request.imgsz, request.batch) == (640, 1) else None
        plan = dense_plan(request.imgsz, request.batch, onnx, dla)
        data = ultralytics_engine_bytes(
            ultralytics_metadata(self.names, request.imgsz, request.batch, request.half,
                                 request.int8, dla), plan)
        if self.mode == 'garbage':
            data = b'\x00garbage' * 64
        if self.mode == 'hang':
            out.write_bytes(data[:len(data) // 2])
            assert self.started is not None
            self.started.touch()
            sleep(120)
        sleep(self.delay_s)
        out.write_bytes(data)
        return {'format': 'engine', 'end2end': False, 'names': self.names,
                'imgsz': [request.imgsz] * 2, 'batch': request.batch, 'stride': 32,
                'ultralytics': '8.4.190', 'seconds': 0.0}


class Log(list):
    """Collects log lines; ``text`` joins them."""

    @property
    def text(self) -> str:
        """Return all lines as one string."""
        return '\n'.join(self)


def install_fake_tensorrt(version: str = JETPACK6_TRT, dla_cores: int = 0) -> None:
    """Make ``import tensorrt`` give the fake (for forked children; tests use the fixture)."""
    loaded_modules['tensorrt'] = fake_tensorrt  # type: ignore[assignment]
    fake_tensorrt.__version__ = version
    fake_tensorrt._NUM_DLA_CORES = dla_cores
    tensorrt_runtime.device_identity = lambda device='cuda:0': FAKE_GPU  # type: ignore
    tensorrt_backend.modelopt_route_available = lambda: False


def make_config(cache: Path, **overrides: Any) -> DetectorConfig:
    """Return a TensorRT detector config on the host 'device' the fake runs on."""
    values: Dict[str, Any] = {'model': 'unused', 'backend': 'tensorrt', 'device': 'cpu',
                              'precision': 'fp16', 'imgsz': 640, 'batch': 1,
                              'cache_dir': str(cache)}
    values.update(overrides)
    return DetectorConfig(**values)


def configure(model: ResolvedModel,
              config: DetectorConfig) -> Tuple[tensorrt_backend.TensorRTBackend, Log]:
    """Run the backend factory as build_detector does; return the backend and its log."""
    log = Log()
    backend = create_tensorrt_backend(model, config, config.device, config.precision, log.append)
    assert isinstance(backend, tensorrt_backend.TensorRTBackend)
    return backend, log


def cached_engines(cache: Path) -> List[Path]:
    """Return the published engines (not temporaries) in ``cache``."""
    return sorted(cache.glob('*.engine'))


def rewrite_consistently(cache: ArtifactCache, path: Path, data: bytes) -> None:
    """Replace an artifact and update the size/hash its sidecar records, as if built so."""
    path.write_bytes(data)
    os.utime(path, ns=(time_ns(), time_ns() + 1000))
    side = cache.sidecar(path)
    record = json.loads(side.read_text())
    if 'size' in record:
        record['size'] = path.stat().st_size
    if 'sha256' in record:
        record['sha256'] = sha256_of(path)
    side.write_text(json.dumps(record))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Return the IoU of two xyxy boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def assert_same_detections(ours: Detections, boxes: np.ndarray, scores: np.ndarray,
                           classes: np.ndarray, min_iou: float = 0.99,
                           max_score_diff: float = 0.01) -> None:
    """Every reference detection has a same-class match with IoU/score within tolerance."""
    assert len(ours) == len(boxes), (len(ours), len(boxes))
    for box, score, cls in zip(boxes, scores, classes):
        same = [i for i in range(len(ours)) if ours.class_ids[i] == int(cls)]
        assert same, f'class {int(cls)} missing'
        best = max(same, key=lambda i: iou(ours.boxes_xyxy[i], box))
        assert iou(ours.boxes_xyxy[best], box) >= min_iou, (ours.boxes_xyxy[best], box)
        assert abs(float(ours.scores[best]) - float(score)) <= max_score_diff


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def onnx_export(yolo11n_pt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Export the trained YOLO11n to ONNX for real (the ONNX an engine is built from)."""
    out = tmp_path_factory.mktemp('onnx') / 'yolo11n_coco128.onnx'
    run_export(ExportRequest(weights=yolo11n_pt, format='onnx', imgsz=640, batch=1,
                             device='cpu'), out, log=lambda _line: None, timeout_s=600)
    return out


@pytest.fixture(scope='module')
def names(onnx_export: Path) -> Dict[int, str]:
    """Class names from the ONNX export's Ultralytics metadata."""
    _, metadata = tensorrt_backend.onnx_input_and_metadata(onnx_export)
    return {int(k): str(v) for k, v in metadata['names'].items()}


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``import tensorrt`` gives the fake (TensorRT 10.3, JetPack 6); a fixed fake GPU."""
    monkeypatch.setitem(loaded_modules, 'tensorrt', fake_tensorrt)
    monkeypatch.setattr(fake_tensorrt, '__version__', JETPACK6_TRT)
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', 0)
    monkeypatch.setattr(fake_tensorrt, '_DESERIALIZE_LOG', [])
    monkeypatch.setattr(fake_tensorrt, 'BuilderFlag', fake_tensorrt.BuilderFlag)
    monkeypatch.setattr(tensorrt_runtime, 'device_identity', lambda device='cuda:0': FAKE_GPU)
    monkeypatch.setattr(tensorrt_backend, 'modelopt_route_available', lambda: False)
    return fake_tensorrt


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch, fake_trt: ModuleType, onnx_export: Path,
             names: Dict[int, str]) -> FakeExporter:
    """Put a counting fake engine build in place of ``run_export``."""
    fake = FakeExporter(onnx_export, names)
    monkeypatch.setattr(tensorrt_backend, 'run_export', fake)
    return fake


@pytest.fixture
def pt_model(yolo11n_pt: Path) -> ResolvedModel:
    """Return the trained YOLO11n weights as the node resolves them."""
    return ResolvedModel(yolo11n_pt, 'pt', 'path')


@pytest.fixture
def calibration_yaml(tmp_path: Path) -> Path:
    """Write a small INT8 calibration dataset yaml with a val folder of two images."""
    folder = tmp_path / 'calib' / 'images' / 'val'
    folder.mkdir(parents=True)
    for i in range(2):
        (folder / f'{i}.jpg').write_bytes(bytes([i]) * 100)
    yaml_path = tmp_path / 'calib' / 'calib.yaml'
    yaml_path.write_text('val: images/val\ntrain: images/val\nnames:\n  0: person\n')
    return yaml_path


# ---------------------------------------------------------------------------------------------
# Engine file header
# ---------------------------------------------------------------------------------------------

def test_header_round_trip_matches_ultralytics_layout(tmp_path: Path) -> None:
    """Our writer produces Ultralytics' bytes; our reader gets metadata and plan back."""
    metadata = ultralytics_metadata({0: 'person', 1: 'bicycle'}, 640, 1, True, False, 0)
    plan = dense_plan()
    path = tmp_path / 'model.engine'
    tensorrt_runtime.write_engine_file(path, metadata, plan)
    assert path.read_bytes() == ultralytics_engine_bytes(metadata, plan)
    engine = tensorrt_runtime.read_engine_file(path)
    assert engine.plan == plan
    assert engine.metadata == json.loads(json.dumps(metadata))  # JSON: names keys are strings
    assert tensorrt_runtime.read_engine_metadata(path) == engine.metadata
    normalized = tensorrt_runtime.normalize_metadata(engine.metadata)
    assert normalized['names'] == {0: 'person', 1: 'bicycle'}
    assert normalized['dla'] == 0 and normalized['imgsz'] == [640, 640]


def test_header_less_plan_is_accepted(tmp_path: Path) -> None:
    """A trtexec plan has no header: the whole file is the plan."""
    plan = dense_plan()
    path = tmp_path / 'trtexec.plan'
    path.write_bytes(plan)
    engine = tensorrt_runtime.read_engine_file(path)
    assert engine.metadata is None and engine.plan == plan
    assert tensorrt_runtime.read_engine_metadata(path) is None
    # a binary plan whose fifth byte happens to be '{' is still a plan
    odd = b'ftrt{\x01\x02' + bytes(100)
    assert tensorrt_runtime.split_engine(odd) == tensorrt_runtime.EngineFile(None, odd)


def _length(n: int) -> bytes:
    return n.to_bytes(4, 'little', signed=True)


@pytest.mark.parametrize('data, message', [
    (b'', 'too short'),
    (b'\x10\x00', 'too short'),
    (_length(500) + b'{"names": {}}' + b'x' * 20, 'truncated inside its metadata header'),
    (_length(12) + b'{"names": 1,' + b'PLAN', 'not valid JSON'),
    (_length(0x7FFFFFFF) + b'{"names": {}}' + b'PLAN', 'claims 2147483647 bytes'),
    (_length(-5) + b'{"a": 1}PLAN', 'claims -5 bytes'),
    (_length(8) + b'{"a": 1}', 'no TensorRT plan after it'),
], ids=['empty', 'two-bytes', 'truncated-header', 'bad-json', 'huge-length', 'negative-length',
        'no-plan'])
def test_damaged_header_is_a_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    """Truncated files, implausible lengths and bad JSON raise EngineFileError saying so."""
    with pytest.raises(EngineFileError, match=message):
        tensorrt_runtime.split_engine(data)
    path = tmp_path / 'damaged.engine'
    path.write_bytes(data)
    with pytest.raises(EngineFileError, match=message):
        tensorrt_runtime.read_engine_file(path)
    assert issubclass(EngineFileError, BackendError)


# ---------------------------------------------------------------------------------------------
# Cache keys, reuse, invalidation
# ---------------------------------------------------------------------------------------------

def test_every_key_field_changes_the_key(calibration_yaml: Path) -> None:
    """Weights, precision, imgsz, batch, DLA core, TensorRT, GPU, sm, Ultralytics, calibration."""
    base: Dict[str, Any] = {
        'weights_sha256': 'a' * 64, 'precision': 'int8', 'imgsz': 640, 'batch': 1,
        'dla_core': -1, 'tensorrt_version': '10.3.0.30', 'device': FAKE_GPU,
        'ultralytics': '8.4.190', 'calibration': calibration_identity(str(calibration_yaml))}
    changes: Dict[str, Any] = {
        'weights_sha256': 'b' * 64, 'precision': 'fp16', 'imgsz': 320, 'batch': 2, 'dla_core': 0,
        'tensorrt_version': '10.3.0.31', 'device': DeviceIdentity('Xavier', '8.7', ''),
        'ultralytics': '8.4.191', 'calibration': 'c' * 64}
    keys = {key_of(engine_key_fields(**base))}
    for name, value in changes.items():
        keys.add(key_of(engine_key_fields(**dict(base, **{name: value}))))
    keys.add(key_of(engine_key_fields(**dict(base, device=DeviceIdentity(
        'NVIDIA Orin (fake)', '7.2', '')))))
    keys.add(key_of(engine_key_fields(**dict(base, device=DeviceIdentity(
        'NVIDIA Orin (fake)', '8.7', 'NVIDIA Jetson Orin NX')))))
    assert len(keys) == len(changes) + 3
    # the calibration digest follows the images, not only the yaml
    before = calibration_identity(str(calibration_yaml))
    (calibration_yaml.parent / 'images' / 'val' / '2.jpg').write_bytes(b'new image')
    assert calibration_identity(str(calibration_yaml)) != before


def test_second_configure_reuses_the_engine(exporter: FakeExporter, pt_model: ResolvedModel,
                                            tmp_path: Path) -> None:
    """One build; the second configure reuses it; stages are logged with times, in order."""
    config = make_config(tmp_path / 'cache')
    first, log1 = configure(pt_model, config)
    second, log2 = configure(pt_model, config)
    assert exporter.calls == 1
    assert first.engine_path == second.engine_path
    warn_at = next(i for i, line in enumerate(log1) if 'takes minutes' in line)
    build_at = next(i for i, line in enumerate(log1) if 'fake TensorRT build started' in line)
    assert warn_at < build_at, 'the "takes minutes" warning must come before the build'
    assert 'reusing cached' in log2.text and 'takes minutes' not in log2.text
    assert all(line.endswith(' s total)') for line in log2 if line.startswith('[tensorrt] ')
               and 'WARNING' not in line)
    out = second.infer(np.zeros((1, 3, 640, 640), np.float32))
    assert out.shape == (1, 84, 8400) and out.dtype == np.float32
    first.close()
    second.close()


@pytest.mark.parametrize('field', ['weights', 'precision', 'imgsz', 'batch', 'dla_core',
                                   'tensorrt', 'gpu', 'compute_capability', 'ultralytics',
                                   'int8_calibration'])
def test_each_key_field_selects_another_engine(
        field: str, exporter: FakeExporter, pt_model: ResolvedModel, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, calibration_yaml: Path) -> None:
    """Changing any key field builds a new engine; the old one stays valid for the old key."""
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', 2)
    base = make_config(tmp_path / 'cache')
    if field == 'int8_calibration':
        base = make_config(tmp_path / 'cache', precision='int8',
                           int8_calibration_data=str(calibration_yaml))
    backend, _ = configure(pt_model, base)
    old_path = backend.engine_path
    model, config = pt_model, base
    if field == 'weights':
        changed = tmp_path / 'retrained.pt'
        changed.write_bytes(pt_model.path.read_bytes() + b'\0')
        model = ResolvedModel(changed, 'pt', 'path')
    elif field in ('precision', 'imgsz', 'batch', 'dla_core'):
        value = {'precision': 'fp32', 'imgsz': 320, 'batch': 2, 'dla_core': 0}[field]
        config = make_config(tmp_path / 'cache', **{field: value})
    elif field == 'tensorrt':
        monkeypatch.setattr(fake_tensorrt, '__version__', '10.3.0.31')
    elif field in ('gpu', 'compute_capability'):
        other = DeviceIdentity('NVIDIA Xavier (fake)', '8.7', '') if field == 'gpu' else \
            DeviceIdentity(FAKE_GPU.name, '7.2', '')
        monkeypatch.setattr(tensorrt_runtime, 'device_identity', lambda device='cuda:0': other)
    elif field == 'ultralytics':
        monkeypatch.setattr(tensorrt_backend, 'ultralytics_version', lambda: '8.4.999')
    else:
        (calibration_yaml.parent / 'images' / 'val' / 'extra.jpg').write_bytes(b'more data')
    backend2, log = configure(model, config)
    assert exporter.calls == 2, log.text
    assert backend2.engine_path != old_path and old_path.exists()
    assert ArtifactCache(tmp_path / 'cache').lookup(old_path, json.loads(
        ArtifactCache.sidecar(old_path).read_text())['key']) == old_path


@pytest.mark.parametrize('damage', ['garbage', 'truncated-in-header', 'truncated-in-plan',
                                    'huge-length'])
def test_damaged_cached_engine_is_rebuilt_with_a_warning(
        damage: str, exporter: FakeExporter, pt_model: ResolvedModel, tmp_path: Path) -> None:
    """A corrupt or truncated cached engine is rebuilt once, with a warning, never a crash."""
    config = make_config(tmp_path / 'cache')
    backend, _ = configure(pt_model, config)
    path = backend.engine_path
    data = path.read_bytes()
    header_end = 4 + int.from_bytes(data[:4], 'little')
    damaged = {'garbage': os.urandom(len(data)),
               'truncated-in-header': data[:header_end // 2],
               'truncated-in-plan': data[:header_end + 20],
               'huge-length': _length(0x7FFFFFFF) + data[4:]}[damage]
    path.write_bytes(damaged)
    backend2, log = configure(pt_model, config)
    assert exporter.calls == 2
    assert 'WARNING' in log.text and 'rebuild' in log.text
    assert backend2.infer(np.zeros((1, 3, 640, 640), np.float32)).shape == (1, 84, 8400)


@pytest.mark.parametrize('damage', ['other-tensorrt-plan', 'truncated-plan', 'garbage-plan'])
def test_plan_refused_by_tensorrt_is_stale_and_rebuilt(
        damage: str, exporter: FakeExporter, pt_model: ResolvedModel, tmp_path: Path) -> None:
    """
    deserialize_cuda_engine returning None is a stale engine: removed, rebuilt once, warned.

    The file is rewritten together with its sidecar, so only TensorRT can tell it is bad.
    """
    cache_dir = tmp_path / 'cache'
    config = make_config(cache_dir)
    backend, _ = configure(pt_model, config)
    path = backend.engine_path
    engine = tensorrt_runtime.read_engine_file(path)
    plan = {'other-tensorrt-plan': dense_plan(version='8.6.2.3'),
            'truncated-plan': engine.plan[:len(engine.plan) // 2],
            'garbage-plan': b'\x01' * 512}[damage]
    rewrite_consistently(ArtifactCache(cache_dir), path, ultralytics_engine_bytes(
        engine.metadata or {}, plan))
    fake_tensorrt._DESERIALIZE_LOG.clear()
    backend2, log = configure(pt_model, config)
    assert exporter.calls == 2
    assert 'WARNING' in log.text and 'rebuilding once' in log.text
    if damage == 'other-tensorrt-plan':
        assert 'not compatible with this version of TensorRT' in log.text
    assert [e['accepted'] for e in fake_tensorrt._DESERIALIZE_LOG] == [False, True]
    assert backend2.engine_path == path


def test_engine_that_fails_right_after_its_build_is_an_error(
        exporter: FakeExporter, pt_model: ResolvedModel, tmp_path: Path) -> None:
    """No rebuild loop: a fresh build TensorRT refuses is reported, once."""
    exporter.mode = 'garbage'
    with pytest.raises(BackendError, match='just built'):
        configure(pt_model, make_config(tmp_path / 'cache'))
    assert exporter.calls == 1


def _prepare_in_child(cache_dir: str, weights: str, onnx: str, names: Dict[int, str],
                      counter: str, results: Any, mode: str = 'ok',
                      started: Optional[str] = None) -> None:
    """Child process: one configure's build step with the fake TensorRT and a slow fake build."""
    install_fake_tensorrt()
    fake = FakeExporter(Path(onnx), names, mode=mode, counter=Path(counter), delay_s=1.0,
                        started=Path(started) if started else None)
    tensorrt_backend.run_export = fake  # type: ignore[assignment]
    artifact = prepare_engine(ResolvedModel(Path(weights), 'pt', 'path'),
                              make_config(Path(cache_dir)), 'cpu', 'fp16', lambda _m: None)
    results.put((str(artifact.path), artifact.built))


def test_concurrent_configures_build_once(pt_model: ResolvedModel, onnx_export: Path,
                                          names: Dict[int, str], tmp_path: Path) -> None:
    """Two processes configuring at once: one builds, the other waits and reuses."""
    context = multiprocessing.get_context('fork')
    results = context.Queue()
    counter = tmp_path / 'builds.txt'
    args = (str(tmp_path / 'cache'), str(pt_model.path), str(onnx_export), names, str(counter),
            results)
    children = [context.Process(target=_prepare_in_child, args=args) for _ in range(2)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert len(counter.read_text().splitlines()) == 1
    assert sorted(built for _, built in outcomes) == [False, True]
    assert outcomes[0][0] == outcomes[1][0]
    assert len(cached_engines(tmp_path / 'cache')) == 1


def test_killed_build_leaves_no_engine_under_the_final_name(
        exporter: FakeExporter, pt_model: ResolvedModel, onnx_export: Path,
        names: Dict[int, str], tmp_path: Path) -> None:
    """SIGKILL mid-build: nothing is published; the next configure cleans up and builds."""
    cache_dir = tmp_path / 'cache'
    started = tmp_path / 'started'
    context = multiprocessing.get_context('fork')
    child = context.Process(target=_prepare_in_child, args=(
        str(cache_dir), str(pt_model.path), str(onnx_export), names,
        str(tmp_path / 'builds.txt'), context.Queue(), 'hang', str(started)))
    child.start()
    deadline = monotonic() + 60
    while not started.exists() and monotonic() < deadline:
        sleep(0.05)
    assert started.exists(), 'the child never started building'
    os.kill(child.pid, SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -SIGKILL
    leftovers = list(cache_dir.glob('*.tmp-*'))
    assert leftovers, 'the kill should have caught the build half-way'
    assert cached_engines(cache_dir) == [] and list(cache_dir.glob('*.engine.json')) == []
    backend, _ = configure(pt_model, make_config(cache_dir))
    assert exporter.calls == 1
    assert not any(p.exists() for p in leftovers)
    assert backend.infer(np.zeros((1, 3, 640, 640), np.float32)).shape == (1, 84, 8400)


# ---------------------------------------------------------------------------------------------
# What gets asked of Ultralytics
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('precision, dla_core, workspace_gb', [
    ('fp32', -1, 0.0), ('fp16', -1, 2.0), ('int8', -1, 0.0), ('fp16', 0, 0.0), ('int8', 1, 4.0)])
def test_export_arguments_for_each_precision_and_dla(
        precision: str, dla_core: int, workspace_gb: float, exporter: FakeExporter,
        pt_model: ResolvedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        calibration_yaml: Path) -> None:
    """The ExportRequest, the child's argv and the exact kwargs of Ultralytics' export()."""
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', 2)
    data = str(calibration_yaml) if precision == 'int8' else ''
    config = make_config(tmp_path / 'cache', precision=precision, dla_core=dla_core,
                         workspace_gb=workspace_gb, int8_calibration_data=data)
    prepare_engine(pt_model, config, 'cuda:0', precision, lambda _m: None)
    request = exporter.requests[-1]
    device = f'dla:{dla_core}' if dla_core >= 0 else '0'
    assert (request.format, request.half, request.int8, request.device, request.imgsz,
            request.batch) == ('engine', precision == 'fp16', precision == 'int8', device, 640, 1)
    assert request.data == (str(calibration_yaml.resolve()) if data else '')
    assert request.workspace_gb == (workspace_gb or None)
    out = tmp_path / 'out.engine'
    argv = request.to_argv(out)
    assert argv[argv.index('--device') + 1] == device and argv[argv.index('--format') + 1] == \
        'engine'
    assert ('--half' in argv) == (precision == 'fp16') and ('--int8' in argv) == (
        precision == 'int8')

    captured: Dict[str, Any] = {}

    def fake_export(self: Any, **kwargs: Any) -> str:
        captured.update(kwargs)
        produced = tmp_path / 'produced.engine'
        produced.write_bytes(b'engine')
        return str(produced)

    from ultralytics.engine.model import Model
    monkeypatch.setattr(Model, 'export', fake_export)
    assert export_module.main(argv) == 0
    expected: Dict[str, Any] = {
        'format': 'engine', 'imgsz': 640, 'batch': 1, 'device': device, 'dynamic': False,
        'simplify': True, 'verbose': False, 'nms': None, 'half': precision == 'fp16',
        'int8': precision == 'int8'}
    if data:
        expected['data'] = str(calibration_yaml.resolve())
    if workspace_gb:
        expected['workspace'] = workspace_gb
    assert captured == expected
    assert out.read_bytes() == b'engine'


def test_onnx_model_builds_through_onnx2engine(
        exporter: FakeExporter, onnx_export: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An .onnx model: same cache, and the child calls onnx2engine with the right arguments."""
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', 2)
    model = ResolvedModel(onnx_export, 'onnx', 'path')
    config = make_config(tmp_path / 'cache', dla_core=0)
    backend, _ = configure(model, config)
    assert exporter.requests[-1].weights == onnx_export
    assert backend.info is not None and backend.info.names[0] == 'person'
    captured: Dict[str, Any] = {}
    import ultralytics.utils.export.engine as engine_module

    @functools.wraps(engine_module.onnx2engine)  # keeps the real signature (quantize=...)
    def fake_onnx2engine(onnx_file: str, output_file: Any, **kwargs: Any) -> str:
        captured.update(kwargs, onnx_file=onnx_file)
        Path(output_file).write_bytes(b'engine')
        return str(output_file)

    monkeypatch.setattr(engine_module, 'onnx2engine', fake_onnx2engine)
    out = tmp_path / 'out.engine'
    assert export_module.main(exporter.requests[-1].to_argv(out)) == 0
    assert out.read_bytes() == b'engine'
    assert captured['quantize'] == 16 and captured['dla'] == '0'
    assert captured['shape'] == (1, 3, 640, 640) and captured['dynamic'] is False
    assert captured['metadata']['dla'] == '0' and captured['metadata']['names'][0] == 'person'
    assert Path(captured['onnx_file']).name == onnx_export.name
    assert captured['onnx_file'] != str(onnx_export), 'onnx2engine must work on a copy'
    wrong = ExportRequest(weights=onnx_export, format='engine', imgsz=320, half=True, device='0')
    assert export_module.main(wrong.to_argv(tmp_path / 'wrong.engine')) == 1


# ---------------------------------------------------------------------------------------------
# Requests the stack cannot honour
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('precision, dla_core, data, cores, message', [
    ('fp32', 0, '', 2, 'DLA runs fp16 or int8 only'),
    ('fp16', 1, '', 1, 'has 1 DLA core'),
    ('fp16', 0, '', 0, 'has no DLA'),
    ('int8', -1, '', None, 'needs int8_calibration_data'),
    ('int8', -1, '/nonexistent/calib.yaml', None, 'does not exist'),
    ('fp64', -1, '', None, 'expected one of'),
    ('fp16', 2, '', 2, 'expected -1'),
])
def test_validate_tensorrt_request_rejects(precision: str, dla_core: int, data: str,
                                           cores: Optional[int], message: str) -> None:
    """Each impossible request gets a reason naming the fix."""
    reason = validate_tensorrt_request(precision, dla_core, data, cores)
    assert reason is not None and message in reason


def test_validate_tensorrt_request_accepts(calibration_yaml: Path) -> None:
    """Requests the machine can honour pass (None: DLA cores unknown, not checked)."""
    assert validate_tensorrt_request('fp16', 0, '', 2) is None
    assert validate_tensorrt_request('auto', 1, '', 2) is None
    assert validate_tensorrt_request('int8', 1, str(calibration_yaml), 2) is None
    assert validate_tensorrt_request('fp32', -1, '', 0) is None
    assert validate_tensorrt_request('fp16', 1, '', None) is None


def assert_runs_in_fresh_interpreter(code: str) -> None:
    """Run ``code`` in a new Python process (nothing imported yet) and require success."""
    import subprocess
    done = subprocess.run([python_executable, '-c', code], capture_output=True, text=True,
                          cwd=str(Path(__file__).resolve().parents[1]), timeout=120)
    assert done.returncode == 0, done.stderr


def test_parameter_checks_import_no_tensorrt_or_torch() -> None:
    """validate_tensorrt_request and dla_core_count are safe in the node's parameter callback."""
    assert_runs_in_fresh_interpreter(
        'import sys\n'
        'from yolo_jetson_ros.pipeline.backends.tensorrt_backend import dla_core_count, '
        'validate_tensorrt_request\n'
        "validate_tensorrt_request('fp16', 0, '', dla_core_count())\n"
        "assert 'tensorrt' not in sys.modules and 'torch' not in sys.modules, 'imported'\n")


def test_probing_for_tensorrt_leaves_no_stub_module_behind() -> None:
    """
    Where only the stubs exist, the probe says no and imports nothing.

    A file-less 'tensorrt' namespace module in sys.modules makes inspect.getmodule(), and so
    every rclpy log call from a new place, raise TypeError.
    """
    assert_runs_in_fresh_interpreter(
        'import sys\n'
        'from yolo_jetson_ros.pipeline.tensorrt_runtime import tensorrt_available\n'
        'real = tensorrt_available()\n'
        "assert real or 'tensorrt' not in sys.modules, 'stub namespace module imported'\n")


def _tensorrt_11(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """Make the fake look like TensorRT 11: strongly typed only, no FP16/INT8 builder flags."""
    import enum
    monkeypatch.setattr(fake_tensorrt, '__version__', version)
    monkeypatch.setattr(fake_tensorrt, 'BuilderFlag',
                        enum.IntEnum('BuilderFlag', {'GPU_FALLBACK': 3}))


@pytest.mark.parametrize('case, message', [
    ('trt11-fp16', 'no BuilderFlag.FP16'),
    ('trt11-int8', 'no BuilderFlag.INT8'),
    ('trt11.2-dla', 'has no DLA support'),
    ('no-dla-cores', 'reports 0 DLA core'),
    ('dla-core-1-of-1', 'reports 1 DLA core'),
    ('dla-fp32', 'DLA runs fp16 or int8 only'),
    ('int8-no-data', 'needs int8_calibration_data'),
    ('int8-from-onnx', 'int8 from an .onnx file'),
])
def test_request_the_stack_cannot_honour_is_refused_before_building(
        case: str, message: str, exporter: FakeExporter, pt_model: ResolvedModel,
        onnx_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        calibration_yaml: Path) -> None:
    """Raise BackendError with the reason, and build nothing else instead."""
    settings: Dict[str, Any] = {'precision': 'fp16'}
    model = pt_model
    cores = {'no-dla-cores': 0, 'dla-core-1-of-1': 1}.get(case, 2)
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', cores)
    if case.startswith('trt11'):
        _tensorrt_11(monkeypatch, '11.2.0.1' if case == 'trt11.2-dla' else '11.0.0.114')
    if case == 'trt11-int8' or case == 'int8-from-onnx':
        settings.update(precision='int8', int8_calibration_data=str(calibration_yaml))
    if case in ('trt11.2-dla', 'no-dla-cores'):
        settings['dla_core'] = 0
        if case == 'trt11.2-dla':
            monkeypatch.setattr(tensorrt_backend, 'modelopt_route_available', lambda: True)
    if case == 'dla-core-1-of-1':
        settings['dla_core'] = 1
    if case == 'dla-fp32':
        settings.update(precision='fp32', dla_core=0)
    if case == 'int8-no-data':
        settings['precision'] = 'int8'
    if case == 'int8-from-onnx':
        model = ResolvedModel(onnx_export, 'onnx', 'path')
    with pytest.raises(BackendError, match=message):
        configure(model, make_config(tmp_path / 'cache', **settings))
    assert exporter.calls == 0
    assert cached_engines(tmp_path / 'cache') == []


def test_tensorrt_11_builds_what_it_can(exporter: FakeExporter, pt_model: ResolvedModel,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On TensorRT 11 fp32 builds, and fp16 where ModelOpt can bake it into the ONNX."""
    _tensorrt_11(monkeypatch, '11.0.0.114')
    configure(pt_model, make_config(tmp_path / 'cache', precision='fp32'))
    monkeypatch.setattr(tensorrt_backend, 'modelopt_route_available', lambda: True)
    configure(pt_model, make_config(tmp_path / 'cache', precision='fp16'))
    assert exporter.calls == 2


@pytest.mark.parametrize('version, flags, cores, expected', [
    ('8.6.2.3', True, 2, (8, True, True, True, False)),
    ('10.3.0.30', True, 2, (10, True, True, True, False)),
    ('10.3.0.30', True, 0, (10, True, False, True, False)),
    ('11.0.0.114', False, 2, (11, False, False, False, True)),
    ('11.3.1.2', False, 2, (11, False, False, False, True)),
    ('11.4.1.5', False, 2, (11, False, True, True, True)),
])
def test_capabilities_by_version(version: str, flags: bool, cores: int,
                                 expected: Tuple[int, bool, bool, bool, bool],
                                 fake_trt: ModuleType,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """(major, fp16 flag, DLA usable, DLA in this version, strongly typed only)."""
    if flags:
        monkeypatch.setattr(fake_tensorrt, '__version__', version)
    else:
        _tensorrt_11(monkeypatch, version)
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', cores)
    caps = tensorrt_runtime.capabilities(fake_tensorrt)
    assert (caps.major, caps.fp16_builder_flag, caps.dla_usable, caps.dla_in_this_version,
            caps.strongly_typed_only) == expected
    assert caps.int8_builder_flag == flags and caps.dla_cores == cores and caps.name_api


def test_check_stack_supports_directly() -> None:
    """The pure check used before every build."""
    trt10 = TensorRTCapabilities('10.3.0.30', 10, 3, True, True, True, 2, True)
    trt11 = TensorRTCapabilities('11.0.0.114', 11, 0, False, False, False, 0, True)
    assert check_stack_supports('fp16', 1, trt10, modelopt_available=False) is None
    assert 'reports 2 DLA core' in (check_stack_supports('fp16', 2, trt10, False) or '')
    assert 'BuilderFlag.FP16' in (check_stack_supports('fp16', -1, trt11, False) or '')
    assert check_stack_supports('fp16', -1, trt11, True) is None
    assert check_stack_supports('fp32', -1, trt11, False) is None


# ---------------------------------------------------------------------------------------------
# Given .engine files, DLA, the legacy binding API
# ---------------------------------------------------------------------------------------------

def test_engine_file_with_metadata_runs_on_its_dla_core(
        exporter: FakeExporter, onnx_export: Path, names: Dict[int, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, sample_images: Dict[str, np.ndarray]) -> None:
    """A .engine with Ultralytics metadata: names, size and DLA core come from it, no build."""
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', 2)
    path = tmp_path / 'yolo11n.engine'
    metadata = ultralytics_metadata(names, 640, 1, True, False, 1)
    path.write_bytes(ultralytics_engine_bytes(metadata, dense_plan(onnx=onnx_export, dla_core=1)))
    model = ResolvedModel(path, 'engine', 'path')
    backend, _ = configure(model, make_config(tmp_path / 'cache', precision='auto'))
    assert exporter.calls == 0
    assert fake_tensorrt._DESERIALIZE_LOG[-1] == {'DLA_core': 1, 'accepted': True}
    assert backend.dla_core == 1 and backend.precision == 'fp16'
    assert backend.info is not None and backend.info.names == names
    assert backend.info.input_hw == (640, 640) and not backend.info.end2end
    detections = Detector(backend, model).detect(sample_images['bus.jpg'])
    assert len(detections) > 0 and names[int(detections.class_ids[0])] == 'person'


def test_cached_dla_engine_sets_the_core_before_deserializing(
        exporter: FakeExporter, pt_model: ResolvedModel, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """runtime.DLA_core is the configured core at the moment deserialize_cuda_engine runs."""
    monkeypatch.setattr(fake_tensorrt, '_NUM_DLA_CORES', 2)
    backend, log = configure(pt_model, make_config(tmp_path / 'cache', dla_core=1))
    assert fake_tensorrt._DESERIALIZE_LOG == [{'DLA_core': 1, 'accepted': True}]
    assert backend.engine_path.name.startswith('yolo11n_coco128-fp16-dla1-')
    assert 'GPU_FALLBACK' in log.text


def test_engine_file_without_metadata(fake_trt: ModuleType, onnx_export: Path,
                                      tmp_path: Path,
                                      sample_images: Dict[str, np.ndarray]) -> None:
    """A plain trtexec plan: names are str(index), input size comes from the engine."""
    dense = tmp_path / 'trtexec.engine'
    dense.write_bytes(dense_plan(onnx=onnx_export))
    model = ResolvedModel(dense, 'engine', 'path')
    backend, _ = configure(model, make_config(tmp_path / 'cache', imgsz=320, batch=4))
    assert backend.info is not None
    assert backend.info.names == {i: str(i) for i in range(80)}
    assert (backend.info.input_hw, backend.info.batch) == ((640, 640), 1)
    assert backend.precision == 'unknown'
    assert len(Detector(backend, model).detect(sample_images['bus.jpg'])) > 0
    # an end-to-end head without metadata, with a dynamic batch filled from the config
    end2end = tmp_path / 'end2end.plan'
    end2end.write_bytes(fake_tensorrt._make_plan(
        [dict(IMAGES, shape=[-1, 3, 320, 320], profile=[[1, 3, 320, 320], [1, 3, 320, 320],
                                                        [4, 3, 320, 320]])],
        [{'name': 'output0', 'shape': [-1, 300, 6], 'dtype': 'FLOAT'}],
        rows=[[10, 20, 110, 220, 0.9, 3]]))
    model = ResolvedModel(end2end, 'engine', 'path')
    backend, log = configure(model, make_config(tmp_path / 'cache', imgsz=320, batch=2))
    assert backend.info is not None and backend.info.end2end and backend.info.batch == 2
    assert 'numeric class ids' in log.text
    found = Detector(backend, model).detect_batch([np.zeros((320, 320, 3), np.uint8)] * 2)
    assert [list(d.class_ids) for d in found] == [[3], [3]]


def test_fused_path_letterboxes_into_the_engine_and_decodes_its_output(
        exporter: FakeExporter, onnx_export: Path, names: Dict[int, str], tmp_path: Path,
        sample_images: Dict[str, np.ndarray]) -> None:
    """
    The fused path gives the host path's detections, through the engine's own buffers.

    On CUDA by default, it letterboxes into the engine's bound input, runs it in place and
    decodes its bound output. Run here on host buffers with the fake: the wiring is tested.
    """
    path = tmp_path / 'yolo11n.engine'
    path.write_bytes(ultralytics_engine_bytes(ultralytics_metadata(names, 640, 1, False, False,
                                                                   None),
                                              dense_plan(onnx=onnx_export)))
    model = ResolvedModel(path, 'engine', 'path')
    host, _ = configure(model, make_config(tmp_path / 'cache', precision='auto'))
    assert not host.has_fused_path  # off on the CPU 'device' by default
    image = sample_images['bus.jpg']
    reference = Detector(host, model).detect(image)
    fused = tensorrt_backend.TensorRTBackend(host.runner, host.info, 'cpu', host.precision,
                                             host.engine_path, host.dla_core, fused=True)
    assert fused.has_fused_path and fused.pipeline is not None
    assert fused.pipeline.input is host.runner.bound_tensors()[0]  # no copy in between
    detector = Detector(fused, model)
    got = detector.detect_batch([image])[0]
    assert_same_detections(got, reference.boxes_xyxy, reference.scores, reference.class_ids)
    fused.execute_only()  # the benchmark's bare forward: the engine alone, bound buffers
    fused.close()
    assert fused.pipeline is None


def test_stale_given_engine_says_to_rebuild(fake_trt: ModuleType, tmp_path: Path,
                                            names: Dict[int, str]) -> None:
    """A given .engine from another TensorRT is not rebuilt (no weights): a clear error."""
    path = tmp_path / 'old.engine'
    path.write_bytes(ultralytics_engine_bytes(ultralytics_metadata(names, 640, 1, True, False,
                                                                   None),
                                              dense_plan(version='8.5.2.2')))
    with pytest.raises(BackendError, match='expecting library version .* got 8.5.2.2.*rebuild'):
        configure(ResolvedModel(path, 'engine', 'path'), make_config(tmp_path / 'cache'))


class _LegacyContext:
    """TensorRT <= 8.4 execution context (binding API) over a fake name-API context."""

    def __init__(self, engine: '_LegacyEngine') -> None:
        self._engine = engine
        self._inner = engine._inner.create_execution_context()

    def set_binding_shape(self, index: int, shape: Tuple[int, ...]) -> bool:
        return self._inner.set_input_shape(self._engine.get_binding_name(index), shape)

    def get_binding_shape(self, index: int) -> Tuple[int, ...]:
        return self._inner.get_tensor_shape(self._engine.get_binding_name(index))

    def execute_async_v2(self, bindings: List[int], stream_handle: int) -> bool:
        for index, address in enumerate(bindings):
            self._inner.set_tensor_address(self._engine.get_binding_name(index), address)
        return self._inner.execute_async_v3(stream_handle)


class _LegacyEngine:
    """TensorRT <= 8.4 engine: ``num_bindings`` and ``get_binding_*``, no ``num_io_tensors``."""

    def __init__(self, inner: fake_tensorrt.ICudaEngine) -> None:
        self._inner = inner

    @property
    def num_bindings(self) -> int:
        return self._inner.num_io_tensors

    def get_binding_name(self, index: int) -> str:
        return self._inner.get_tensor_name(index)

    def binding_is_input(self, index: int) -> bool:
        return self._inner.get_tensor_mode(self.get_binding_name(index)) == \
            fake_tensorrt.TensorIOMode.INPUT

    def get_binding_shape(self, index: int) -> Tuple[int, ...]:
        return self._inner.get_tensor_shape(self.get_binding_name(index))

    def get_binding_dtype(self, index: int) -> fake_tensorrt.DataType:
        return self._inner.get_tensor_dtype(self.get_binding_name(index))

    def get_profile_shape(self, profile: int, index: int) -> List[Tuple[int, ...]]:
        return self._inner.get_tensor_profile_shape(self.get_binding_name(index), profile)

    def create_execution_context(self) -> _LegacyContext:
        return _LegacyContext(self)


def test_binding_api_branch_for_tensorrt_8_4(fake_trt: ModuleType,
                                             onnx_export: Path) -> None:
    """Engines without num_io_tensors run through num_bindings/execute_async_v2, same output."""
    class LegacyRuntime(fake_tensorrt.Runtime):
        def deserialize_cuda_engine(self, serialized_engine: bytes) -> Any:
            inner = super().deserialize_cuda_engine(serialized_engine)
            return None if inner is None else _LegacyEngine(inner)

    legacy = ModuleType('tensorrt_8_4')
    legacy.__dict__.update({k: v for k, v in vars(fake_tensorrt).items()
                            if not k.startswith('__')})
    legacy.__dict__.update(__version__=JETPACK6_TRT, Runtime=LegacyRuntime)
    plan = dense_plan(onnx=onnx_export)
    batch = np.random.default_rng(0).random((1, 3, 640, 640), np.float32)
    modern = TensorRTRunner(fake_tensorrt, plan, device='cpu')
    old = TensorRTRunner(legacy, plan, device='cpu')
    assert (modern.api, old.api) == ('name', 'binding')
    assert np.array_equal(modern.infer(batch).copy(), old.infer(batch))
    modern.close()
    old.close()


def test_runner_reports_refusal_and_execution_errors(fake_trt: ModuleType) -> None:
    """A refused plan carries TensorRT's own messages; a failed execute is a BackendError."""
    with pytest.raises(StaleEngineError, match='Magic Tag does not match') as info:
        TensorRTRunner(fake_tensorrt, b'not a plan', device='cpu')
    assert 'Engine deserialization failed.' in info.value.messages
    runner = TensorRTRunner(fake_tensorrt, dense_plan(imgsz=64), device='cpu')
    with pytest.raises(ValueError, match='batch shape'):
        runner.infer(np.zeros((1, 3, 32, 32), np.float32))
    runner.context._addresses.clear()  # as if an address had never been set
    with pytest.raises(BackendError, match='no address set'):
        runner.infer(np.zeros((1, 3, 64, 64), np.float32))


@pytest.mark.parametrize('metadata, output_shape, expected', [
    ({'names': {i: str(i) for i in range(80)}, 'end2end': True}, (1, 84, 8400), False),
    ({'names': {i: str(i) for i in range(80)}}, (1, 300, 6), True),
    (None, (1, 300, 6), True),
    (None, (1, 6, 8400), False),
    ({'names': {i: str(i) for i in range(80)}}, (1, 85, 8400), 'fits neither'),
    ({'names': {0: 'a'}, 'task': 'segment'}, (1, 5, 8400), "'segment' model"),
], ids=['int8-jp6-fell-back-to-dense', 'end2end', 'end2end-no-metadata', 'two-classes-dense',
        'class-count-mismatch', 'not-detection'])
def test_model_info_follows_the_engine_output(metadata: Optional[Dict[str, Any]],
                                              output_shape: Tuple[int, ...],
                                              expected: Any) -> None:
    """The head layout comes from the output shape checked against the class count."""
    log = Log()
    if isinstance(expected, str):
        with pytest.raises(BackendError, match=expected):
            tensorrt_backend.model_info_from_engine(metadata, (1, 3, 640, 640), output_shape,
                                                    log.append)
        return
    info = tensorrt_backend.model_info_from_engine(metadata, (1, 3, 640, 640), output_shape,
                                                   log.append)
    assert info.end2end is expected and info.input_hw == (640, 640)


def test_runner_with_half_precision_io_returns_float32(fake_trt: ModuleType,
                                                       tmp_path: Path) -> None:
    """Engines with fp16 I/O take float32 batches and give float32 outputs."""
    plan = fake_tensorrt._make_plan(
        [dict(IMAGES, shape=[1, 3, 32, 32], dtype='HALF')],
        [{'name': 'output0', 'shape': [1, 300, 6], 'dtype': 'HALF'}], rows=[[1, 2, 3, 4, 0.5, 7]],
        dla_core=0)
    path = tmp_path / 'half.engine'
    tensorrt_runtime.write_engine_file(path, {'dla': '0', 'names': {'0': 'a'}}, plan)
    with pytest.raises(StaleEngineError, match='DLA core 0'):
        TensorRTRunner(fake_tensorrt, plan, device='cpu')  # the core was not set: refused
    runner = TensorRTRunner.from_engine_file(fake_tensorrt, path, device='cpu')
    assert runner.dla_core == 0 and runner.metadata == {'dla': 0, 'names': {0: 'a'}}
    assert runner.inputs[0].dtype == np.float16
    out = runner.infer(np.ones((1, 3, 32, 32), np.float32))
    assert out.dtype == np.float32 and out[0, 0].tolist() == [1, 2, 3, 4, 0.5, 7]


def test_recording_logger_is_one_ilogger_per_module(fake_trt: ModuleType) -> None:
    """install_error_logger returns the same ILogger subclass instance; keeps errors, warnings."""
    logger, record = tensorrt_runtime.install_error_logger(fake_tensorrt)
    assert tensorrt_runtime.install_error_logger(fake_tensorrt)[0] is logger
    assert isinstance(logger, fake_tensorrt.ILogger)
    mark = record.mark()
    logger.log(fake_tensorrt.ILogger.ERROR, 'bad plan')
    logger.log(fake_tensorrt.ILogger.WARNING, 'odd plan')
    logger.log(fake_tensorrt.ILogger.INFO, 'chatter')
    assert record.since(mark) == (['bad plan'], ['odd plan'])


def test_dla_core_count_from_device_nodes(tmp_path: Path) -> None:
    """Jetson with DLA nodes (JetPack 5 and 6 names, sysfs); Orin Nano; a PC with stray nodes."""
    def machine(name: str, files: List[str]) -> Path:
        root = tmp_path / name
        for f in files:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_text('')
        return root

    assert dla_core_count(machine('pc', ['dev/nvhost-nvdla0'])) == 0
    assert dla_core_count(machine('jp5', ['etc/nv_tegra_release', 'dev/nvhost-nvdla0',
                                          'dev/nvhost-nvdla1', 'dev/nvhost-ctrl-nvdla0'])) == 2
    assert dla_core_count(machine('jp6', ['etc/nv_tegra_release', 'dev/nvhost-ctrl-nvdla0',
                                          'dev/nvhost-ctrl-nvdla1'])) == 2
    assert dla_core_count(machine('sysfs', ['proc/device-tree/model',
                                            'sys/bus/platform/devices/15880000.nvdla0'])) == 0
    (tmp_path / 'sysfs/proc/device-tree/model').write_bytes(b'NVIDIA Jetson Orin NX\0')
    assert dla_core_count(tmp_path / 'sysfs') == 1
    assert dla_core_count(machine('nano', ['etc/nv_tegra_release'])) == 0


def test_device_identity_without_cuda() -> None:
    """Without a CUDA device the key says 'unknown' rather than failing."""
    pytest.importorskip('torch', reason='torch not installed')
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a CUDA device')
    identity = tensorrt_runtime.device_identity('cuda:0')
    assert (identity.name, identity.compute_capability) == ('unknown', 'unknown')


# ---------------------------------------------------------------------------------------------
# Command-line prebuild
# ---------------------------------------------------------------------------------------------

def test_build_engine_cli_fills_the_node_cache(exporter: FakeExporter, pt_model: ResolvedModel,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    """build_engine builds into the same cache under the same key; the node then reuses it."""
    cache_dir = tmp_path / 'cache'
    argv = ['--model', str(pt_model.path), '--precision', 'fp32', '--device', 'cpu',
            '--cache-dir', str(cache_dir), '--verify']
    assert build_engine.main(argv) == 0
    out = capsys.readouterr().out
    engine_line = next(line for line in out.splitlines() if line.startswith('engine: '))
    key_line = next(line for line in out.splitlines() if line.startswith('key: '))
    assert 'verified: backend=tensorrt' in out
    backend, log = configure(pt_model, make_config(cache_dir, precision='fp32'))
    assert exporter.calls == 1 and 'reusing cached' in log.text
    assert str(backend.engine_path) == engine_line[len('engine: '):]
    assert key_line[len('key: '):] in backend.engine_path.name
    assert build_engine.main(argv) == 0 and 'reused' in capsys.readouterr().out
    assert build_engine.main(['--model', str(pt_model.path), '--precision', 'fp32',
                              '--dla-core', '0', '--device', 'cpu']) == 2
    assert 'DLA runs fp16 or int8 only' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Real detections: the ONNX export, and the real TensorRT seam where it exists
# ---------------------------------------------------------------------------------------------

def _ultralytics_reference(weights: Path, image: np.ndarray) -> Tuple[np.ndarray, ...]:
    from ultralytics import YOLO
    result = YOLO(str(weights), task='detect').predict(image, imgsz=640, rect=False, conf=0.25,
                                                       iou=0.7, device='cpu', verbose=False)[0]
    boxes = result.boxes
    return boxes.xyxy.numpy(), boxes.conf.numpy(), boxes.cls.numpy()


def test_onnx_export_and_fake_engine_match_ultralytics_predict(
        exporter: FakeExporter, onnx_export: Path, pt_model: ResolvedModel, tmp_path: Path,
        sample_images: Dict[str, np.ndarray]) -> None:
    """
    The ONNX that becomes the engine detects on bus.jpg what the .pt predicts (IoU >= 0.99).

    The fake engine runs that same ONNX through the TensorRT seam (header, runtime, buffers,
    pointers, decode), so its detections must be identical to ONNX Runtime's.
    """
    image = sample_images['bus.jpg']
    reference = _ultralytics_reference(pt_model.path, image)
    assert len(reference[0]) >= 2
    onnx_backend = OnnxRuntimeBackend(onnx_export, 'cpu')
    onnx_found = Detector(onnx_backend, ResolvedModel(onnx_export, 'onnx', 'path')).detect(image)
    assert_same_detections(onnx_found, *reference)
    engine_backend, _ = configure(pt_model, make_config(tmp_path / 'cache'))
    engine_found = Detector(engine_backend, pt_model).detect(image)
    assert np.array_equal(engine_found.class_ids, onnx_found.class_ids)
    assert np.allclose(engine_found.boxes_xyxy, onnx_found.boxes_xyxy, atol=1e-3)
    assert np.allclose(engine_found.scores, onnx_found.scores, atol=1e-5)


def test_real_tensorrt_engine_on_bus(yolo11n_pt: Path, tmp_path: Path,
                                     sample_images: Dict[str, np.ndarray]) -> None:
    """With real TensorRT and a GPU: build fp32 through Ultralytics, run bus.jpg, compare."""
    # not importorskip: importing the stubs' namespace package would leave a file-less
    # 'tensorrt' module in sys.modules, which breaks inspect.getmodule() for later tests
    if not tensorrt_runtime.tensorrt_available():
        pytest.skip(REAL_TRT_REASON + ' (or only its type stubs are)')
    torch = pytest.importorskip('torch', reason='torch not installed')
    if not torch.cuda.is_available():
        pytest.skip('TensorRT is installed but torch sees no CUDA device')
    model = ResolvedModel(yolo11n_pt, 'pt', 'path')
    config = make_config(tmp_path / 'cache', device='cuda:0', precision='fp32')
    backend, log = configure(model, config)
    assert 'takes minutes' in log.text
    assert backend.has_fused_path  # on CUDA: pre/post on the GPU around the engine
    found = Detector(backend, model).detect(sample_images['bus.jpg'])
    reference = _ultralytics_reference(yolo11n_pt, sample_images['bus.jpg'])
    assert_same_detections(found, *reference)
    host = tensorrt_backend.TensorRTBackend(backend.runner, backend.info, 'cuda:0',
                                            backend.precision, backend.engine_path,
                                            backend.dla_core, fused=False)
    assert_same_detections(Detector(host, model).detect(sample_images['bus.jpg']), *reference)
    backend.close()
    again, log = configure(model, config)
    assert 'reusing cached' in log.text
    again.close()
