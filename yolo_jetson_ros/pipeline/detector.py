# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The detector: configuration in, a warmed-up pipeline out; images in, :class:`Detections` out.

All slow work (model resolution, export, engine build, buffer allocation, warm-up) happens in
:func:`build_detector`; :meth:`Detector.detect` only letterboxes into a preallocated input, runs
the backend and decodes.
"""

from dataclasses import dataclass
import importlib.metadata
from pathlib import Path
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .backends.base import Backend, BackendError, ModelInfo
from .cache import ArtifactCache, default_cache_root
from .detections import Detections
from .export import ExportError, ExportRequest, run_export
from .models import ModelError, resolve_model, ResolvedModel, sha256_of
from .postprocess import decode, NmsSettings
from .preprocess import Letterboxer, LetterboxGeometry

BACKENDS = ('auto', 'tensorrt', 'torch', 'onnxruntime')
PRECISIONS = ('auto', 'fp32', 'fp16', 'int8')

Log = Callable[[str], None]


class ConfigurationError(RuntimeError):
    """The detector cannot be built as configured; the message is a one-line reason."""


@dataclass
class DetectorConfig:
    """Everything that decides which model runs where (changing any of it means a rebuild)."""

    model: str = 'yolo11n'
    model_dir: str = ''
    model_sha256: str = ''
    backend: str = 'auto'
    device: str = ''  # '' = cuda:0 where the backend can use it, else cpu
    precision: str = 'auto'  # auto = fp16 on a GPU, fp32 on the CPU
    imgsz: int = 640
    batch: int = 1
    cache_dir: str = ''  # '' = ~/.ros/yolo_jetson_ros/engines
    threads: int = 0  # CPU inference threads, 0 = the runtime's default
    force_rebuild: bool = False
    dla_core: int = -1
    nms_free: bool = False  # YOLO26/YOLOv10 one-to-one head instead of head + NMS
    compile_postprocess: bool = False  # torch.compile the GPU decode + NMS (gpu_pipeline)
    workspace_gb: float = 0.0
    int8_calibration_data: str = ''
    export_timeout_s: float = 3600.0

    def cache_root(self) -> Path:
        """Return the folder for exported models and engines."""
        return (
            Path(self.cache_dir).expanduser()
            if self.cache_dir
            else default_cache_root() / 'engines'
        )


@dataclass
class StageTimes:
    """Wall-clock milliseconds of the last frame's stages."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Return the sum of the stages."""
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


class Detector:
    """A built, warmed-up detection pipeline around one backend."""

    def __init__(
        self, backend: Backend, model: ResolvedModel, settings: Optional[NmsSettings] = None
    ):
        if backend.info is None:
            raise BackendError('backend did not report its model info')
        self.backend = backend
        self.model = model
        self.info: ModelInfo = backend.info
        self.settings = settings or NmsSettings()
        self.letterboxer = Letterboxer(self.info.input_hw, self.info.batch)
        self.times = StageTimes()

    @property
    def names(self) -> Dict[int, str]:
        """Return the class index -> name table of the model."""
        return self.info.names

    def warm_up(self, iterations: int = 2) -> None:
        """Run the whole frame path a few times so lazy initialisation is done before frames."""
        blank = np.full((*self.info.input_hw, 3), 114, np.uint8)
        for _ in range(iterations):
            self.detect(blank)
        self.backend.after_warm_up()

    def detect(self, image: np.ndarray, bgr: bool = True) -> Detections:
        """Detect objects in one HxWx3 uint8 image; boxes come back in its pixels."""
        return self.detect_batch([image], [bgr])[0]

    def detect_batch(
        self, images: Sequence[np.ndarray], bgr: Optional[Sequence[bool]] = None
    ) -> List[Detections]:
        """Detect objects in up to ``batch`` images with one inference call."""
        if len(images) > self.info.batch:
            raise ValueError(f'{len(images)} images for a batch-{self.info.batch} model')
        if self.backend.has_fused_path:
            return self._detect_fused(images, bgr)
        t0 = time.perf_counter()
        geometries: List[LetterboxGeometry] = []
        for slot, image in enumerate(images):
            geometries.append(self.letterboxer.prepare(image, bgr[slot] if bgr else True, slot))
        t1 = time.perf_counter()
        raw = self.backend.infer(self.letterboxer.input)
        t2 = time.perf_counter()
        results = [self._to_detections(rows, g) for rows, g in
                   zip(decode(raw[:len(images)], self.settings, self.info.end2end), geometries)]
        t3 = time.perf_counter()
        self.times = StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return results

    def _detect_fused(self, images: Sequence[np.ndarray],
                      bgr: Optional[Sequence[bool]]) -> List[Detections]:
        """Backends with a fused device path: upload, letterbox, infer and NMS in one call."""
        flags = list(bgr) if bgr else [True] * len(images)
        t0 = time.perf_counter()
        rows_per_image = self.backend.detect_images(images, flags, self.settings)
        total_ms = (time.perf_counter() - t0) * 1e3
        stages = self.backend.stage_ms
        self.times = StageTimes(*stages) if stages else StageTimes(0.0, total_ms, 0.0)
        return [Detections(np.ascontiguousarray(r[:, :4]), np.ascontiguousarray(r[:, 4]),
                           r[:, 5].astype(np.int64)) for r in rows_per_image]

    @staticmethod
    def _to_detections(rows: np.ndarray, geometry: LetterboxGeometry) -> Detections:
        boxes = geometry.boxes_to_source(rows[:, :4].astype(np.float32, copy=True))
        return Detections(boxes, rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64))

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()


def _ultralytics_version() -> str:
    try:
        return importlib.metadata.version('ultralytics')
    except importlib.metadata.PackageNotFoundError:
        return 'none'


def tensorrt_importable() -> bool:
    """Return True when the real TensorRT bindings (not only their typing stubs) import."""
    from .tensorrt_runtime import tensorrt_available
    return tensorrt_available()


def choose_backend(config: DetectorConfig, model: ResolvedModel) -> Tuple[str, str]:
    """Return ``(backend, device)``: tensorrt > torch on CUDA > onnxruntime on the CPU."""
    from .backends.torch_backend import cuda_available

    backend = config.backend
    if model.format == 'engine':
        if backend not in ('auto', 'tensorrt'):
            raise ConfigurationError(
                f'a .engine model runs only on the tensorrt backend, not {backend}'
            )
        backend = 'tensorrt'
    elif model.format == 'onnx' and backend == 'torch':
        raise ConfigurationError('the torch backend needs .pt weights, not an .onnx file')
    if backend == 'auto':
        wants_cpu = config.device == 'cpu'
        if not wants_cpu and tensorrt_importable() and cuda_available():
            backend = 'tensorrt'
        elif not wants_cpu and model.format == 'pt' and cuda_available():
            backend = 'torch'
        else:
            backend = 'onnxruntime'
    device = config.device
    if not device:
        device = 'cuda:0' if backend in ('tensorrt', 'torch') and cuda_available() else 'cpu'
    if backend == 'tensorrt' and not device.startswith('cuda'):
        raise ConfigurationError(
            'the tensorrt backend runs on a CUDA device; set device cuda:0 '
            'or backend onnxruntime for the CPU'
        )
    return backend, device


def resolve_precision(requested: str, backend: str, device: str) -> str:
    """Return the precision to build: ``auto`` is fp16 on a GPU and fp32 on the CPU."""
    if requested == 'auto':
        return 'fp16' if device.startswith('cuda') else 'fp32'
    if requested == 'int8' and backend != 'tensorrt':
        raise ConfigurationError(f'int8 needs the tensorrt backend (got {backend})')
    if requested == 'fp16' and not device.startswith('cuda'):
        raise ConfigurationError(
            f'fp16 needs a CUDA device (got {device}); use precision fp32 or auto'
        )
    if requested == 'fp16' and backend == 'onnxruntime':
        raise ConfigurationError('the onnxruntime backend runs fp32 only; use fp32 or auto')
    return requested


def _onnx_for(model: ResolvedModel, config: DetectorConfig, log: Log) -> Tuple[Path, bool]:
    """Return the ONNX export of ``model`` from the cache, exporting it on a miss."""
    if model.format == 'onnx':
        return model.path, False
    cache = ArtifactCache(config.cache_root())
    fields = {
        'kind': 'onnx',
        'weights_sha256': sha256_of(model.path),
        'imgsz': config.imgsz,
        'batch': config.batch,
        'ultralytics': _ultralytics_version(),
        'nms_free': config.nms_free,
    }
    path = cache.path_for(model.stem, fields, '.onnx')

    def build(tmp: Path) -> None:
        log(
            f'exporting {model.path.name} to ONNX (imgsz {config.imgsz}, batch {config.batch}) '
            f'into {cache.root}; this takes a few seconds once, later configures reuse it'
        )
        run_export(
            ExportRequest(weights=model.path, format='onnx', imgsz=config.imgsz,
                          batch=config.batch, device='cpu', nms_free=config.nms_free),
            tmp,
            log=lambda line: log(f'[export] {line}'),
            timeout_s=config.export_timeout_s,
        )

    return cache.get_or_build(path, fields, build, force=config.force_rebuild)


def build_detector(
    config: DetectorConfig, log: Log = lambda _m: None, settings: Optional[NmsSettings] = None,
    warm_up: bool = True,
) -> Detector:
    """
    Resolve, build (or load from cache) and warm up the detector described by ``config``.

    ``warm_up=False`` leaves the warm-up to the caller, to run it on the thread that will infer:
    torch's cuDNN plan cache and cuBLAS handles are per thread, so a warm-up elsewhere does not
    spare that thread its first-frame cost (1.3 s for fp16 on an H100).
    Raises :class:`ConfigurationError` with a one-line reason on any failure.
    """
    try:
        model = resolve_model(
            config.model,
            config.model_dir,
            download_dir=default_cache_root() / 'models',
            expected_sha256=config.model_sha256,
            log=log,
        )
        backend_name, device = choose_backend(config, model)
        precision = resolve_precision(config.precision, backend_name, device)
        if config.dla_core >= 0 and backend_name != 'tensorrt':
            raise ConfigurationError(
                f'dla_core {config.dla_core} needs the tensorrt backend '
                f'(got {backend_name}); set dla_core -1'
            )
        log(
            f'model {model.path} ({model.format}, from {model.source}); backend {backend_name} '
            f'on {device}, precision {precision}'
        )
        backend: Backend
        if backend_name == 'onnxruntime':
            from .backends.onnxruntime_backend import OnnxRuntimeBackend

            onnx_path, built = _onnx_for(model, config, log)
            log(('exported ' if built else 'reusing cached ') + str(onnx_path))
            backend = OnnxRuntimeBackend(onnx_path, device, threads=config.threads)
        elif backend_name == 'torch':
            from .backends.torch_backend import TorchBackend

            backend = TorchBackend(model.path, device, half=precision == 'fp16',
                                   imgsz=config.imgsz, batch=config.batch,
                                   nms_free=config.nms_free,
                                   compile_postprocess=config.compile_postprocess)
        else:
            from .backends.tensorrt_backend import create_tensorrt_backend

            backend = create_tensorrt_backend(model, config, device, precision, log)
        detector = Detector(backend, model, settings)
        if warm_up:
            detector.warm_up()
        return detector
    except (ModelError, BackendError, ConfigurationError, ExportError) as exc:
        raise ConfigurationError(str(exc)) from exc
    except OSError as exc:
        raise ConfigurationError(f'{type(exc).__name__}: {exc}') from exc


__all__ = [
    'BACKENDS',
    'PRECISIONS',
    'ConfigurationError',
    'Detector',
    'DetectorConfig',
    'StageTimes',
    'build_detector',
    'choose_backend',
    'resolve_precision',
]
