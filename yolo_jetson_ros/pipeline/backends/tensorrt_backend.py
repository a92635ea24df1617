# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
TensorRT backend: engines built once into the cache, run through :mod:`..tensorrt_runtime`.

:func:`create_tensorrt_backend` (called by ``build_detector``):

1. A ``.engine`` model is loaded as it is, with its Ultralytics metadata or, for a plain
   ``trtexec`` plan, without (class names ``'0'``, ``'1'``, ...; input size from the engine).
2. A ``.pt``/``.onnx`` model is first checked against what was asked
   (:func:`validate_tensorrt_request`) and what the installed TensorRT can do
   (:func:`check_stack_supports`), so an impossible request fails with its reason instead of
   silently building something else. :func:`prepare_engine` then reuses the cached engine whose
   key matches, or builds it through Ultralytics' exporter in a child process (minutes on a
   Jetson). The command-line prebuilder (``build_engine``) calls the same function.
3. A cached engine that TensorRT refuses (another TensorRT/GPU, corrupt, truncated) is removed and
   rebuilt once, with a warning; an engine that was just built and still fails is an error.

:func:`validate_tensorrt_request` and :func:`dla_core_count` import nothing from TensorRT: the
ROS node calls them from its parameter callback.
"""

from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from re import search
from time import monotonic
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple
from typing import TYPE_CHECKING

import numpy as np

from .base import Backend, BackendError, ModelInfo
from .. import tensorrt_runtime as runtime
from ..cache import ArtifactCache, key_of
from ..export import ExportRequest, run_export
from ..models import ResolvedModel, sha256_of
from ..postprocess import is_end2end_output
from ..tensorrt_runtime import (DeviceIdentity, EngineFileError, StaleEngineError,
                                TensorRTCapabilities, TensorRTRunner)

if TYPE_CHECKING:  # annotations only: detector imports this module lazily
    from ..detector import DetectorConfig

Log = Callable[[str], None]

ENGINE_SCHEMA = 1  # bump when what goes into an engine changes in ways the key fields miss
PRECISIONS = ('auto', 'fp32', 'fp16', 'int8')
DLA_CORES = (-1, 0, 1)  # Ultralytics accepts device 'dla:0' and 'dla:1' only
BUILD_NOTE = ('this takes minutes (typically 5-20 on a Jetson, longer with int8 calibration) and '
              'happens once: later configures reuse the cached engine')
# Device nodes / sysfs entries of DLA cores: JetPack 5 has /dev/nvhost-nvdla<N>, JetPack 6 boards
# were seen with only /dev/nvhost-ctrl-nvdla<N>; the platform devices are <addr>.nvdla<N>.
DLA_DEVICE_GLOBS = ('dev/nvhost-nvdla*', 'dev/nvhost-ctrl-nvdla*',
                    'sys/bus/platform/devices/*nvdla*')


# ---------------------------------------------------------------------------------------------
# Checks without TensorRT (ROS parameter callback)
# ---------------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return ''


def is_jetson(root: Path = Path('/')) -> bool:
    """Return True on an NVIDIA Jetson (L4T release file or a Tegra device tree)."""
    if (root / 'etc/nv_tegra_release').exists():
        return True
    return 'jetson' in _read_text(root / 'proc/device-tree/model').lower() or \
        'tegra' in _read_text(root / 'proc/device-tree/compatible').lower()


def dla_core_count(root: Path = Path('/')) -> int:
    """Return the number of DLA cores of this machine: 0 off Jetson, on Orin Nano and on Thor."""
    if not is_jetson(root):
        return 0
    cores = set()
    for pattern in DLA_DEVICE_GLOBS:
        for entry in root.glob(pattern):
            match = search(r'nvdla(\d+)$', entry.name)
            if match:
                cores.add(int(match.group(1)))
    return len(cores)


def validate_tensorrt_request(precision: str, dla_core: int, int8_calibration_data: str,
                              dla_cores_available: Optional[int]) -> Optional[str]:
    """
    Return why this TensorRT request cannot be honoured, or None when it can.

    ``dla_cores_available`` is :func:`dla_core_count` (None: unknown, not checked). What the
    installed TensorRT supports is checked later, by :func:`check_stack_supports`.
    """
    if precision not in PRECISIONS:
        return f"precision '{precision}': expected one of {', '.join(PRECISIONS)}"
    if dla_core not in DLA_CORES:
        return f'dla_core {dla_core}: expected -1 (GPU), 0 or 1'
    if dla_core >= 0:
        if precision == 'fp32':
            return ('DLA runs fp16 or int8 only, not fp32; set precision fp16 or int8, '
                    'or dla_core -1 for the GPU')
        if dla_cores_available is not None and dla_core >= dla_cores_available:
            if dla_cores_available == 0:
                return (f'dla_core {dla_core}: this machine has no DLA (Jetson AGX Xavier, Xavier '
                        'NX, AGX Orin and Orin NX have; Orin Nano, Thor and PCs do not); '
                        'set dla_core -1')
            return (f'dla_core {dla_core}: this machine has {dla_cores_available} DLA core(s), '
                    f'use 0..{dla_cores_available - 1} or -1 for the GPU')
    if precision == 'int8':
        if not int8_calibration_data:
            return ('precision int8 needs int8_calibration_data: a dataset yaml of representative '
                    'images (300+ recommended); or use precision fp16')
        if not Path(int8_calibration_data).expanduser().exists():
            return f"int8_calibration_data '{int8_calibration_data}' does not exist"
    return None


def modelopt_route_available() -> bool:
    """
    Return True when fp16/int8 can be built without builder flags (TensorRT 11).

    TensorRT 11 removed the FP16/INT8 flags; newer Ultralytics then bakes the precision into the
    ONNX with NVIDIA ModelOpt. That needs ``modelopt`` installed and an Ultralytics that has
    the route; its source is read rather than imported, to keep Ultralytics out of the node.
    """
    try:
        if find_spec('modelopt') is None:
            return False
        spec = find_spec('ultralytics')
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    engine_py = Path(spec.origin).parent / 'utils' / 'export' / 'engine.py'
    return 'modelopt' in _read_text(engine_py)


def check_stack_supports(precision: str, dla_core: int, caps: TensorRTCapabilities,
                         modelopt_available: bool) -> Optional[str]:
    """Return why the installed TensorRT cannot build this request, or None when it can."""
    if precision in ('fp16', 'int8'):
        has_flag = caps.fp16_builder_flag if precision == 'fp16' else caps.int8_builder_flag
        if not has_flag and not modelopt_available:
            return (f'precision {precision}: TensorRT {caps.version} has no '
                    f'BuilderFlag.{precision.upper()} (TensorRT 11 builds strongly typed networks '
                    'only) and the precision cannot be baked into the ONNX here (needs NVIDIA '
                    "ModelOpt, pip install 'nvidia-modelopt[onnx]', and an Ultralytics that uses "
                    'it); use precision fp32, or TensorRT 10')
    if dla_core >= 0:
        if not caps.dla_in_this_version:
            return (f'dla_core {dla_core}: TensorRT {caps.version} has no DLA support (TensorRT '
                    '11.0-11.3 shipped without it; use TensorRT 10 or 11.4+ on AGX Orin); '
                    'set dla_core -1')
        if dla_core >= caps.dla_cores:
            return (f'dla_core {dla_core}: TensorRT reports {caps.dla_cores} DLA core(s) on this '
                    'machine; set dla_core -1' + (f' or 0..{caps.dla_cores - 1}'
                                                  if caps.dla_cores else ''))
    return None


# ---------------------------------------------------------------------------------------------
# Cache key and build
# ---------------------------------------------------------------------------------------------

def ultralytics_version() -> str:
    """Return the installed Ultralytics version (it decides how the engine is exported)."""
    try:
        return version('ultralytics')
    except PackageNotFoundError:
        return 'none'


def _digest_files(digest: Any, path: Path) -> None:
    if path.is_file():  # an image list (.txt) or a single file: its content
        digest.update(path.read_bytes())
        return
    for entry in sorted(path.rglob('*')):
        if entry.is_file():
            st = entry.stat()
            digest.update(f'{entry.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())


def _dataset_split_paths(yaml_path: Path) -> List[Path]:
    """Return the calibration image folders/lists a dataset yaml names (best effort)."""
    try:
        import yaml
        doc = yaml.safe_load(yaml_path.read_text())
    except Exception:  # unreadable yaml: the key still covers the file's bytes
        return []
    if not isinstance(doc, dict):
        return []
    root = Path(str(doc.get('path') or yaml_path.parent)).expanduser()
    if not root.is_absolute():
        root = yaml_path.parent / root
    # Ultralytics calibrates on split 'val' (exporter.get_int8_calibration_dataloader)
    entries = doc.get('val') or doc.get('train') or []
    entries = entries if isinstance(entries, list) else [entries]
    return [root / str(e) for e in entries if (root / str(e)).exists()]


def calibration_identity(data: str) -> str:
    """
    Return a digest of the INT8 calibration data: the yaml's bytes plus its image files.

    Images count by relative name, size and modification time (hashing hundreds of images at
    every configure would cost seconds); a changed image set changes the digest.
    """
    path = Path(data).expanduser()
    digest = sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        for split in _dataset_split_paths(path):
            digest.update(str(split.name).encode())
            _digest_files(digest, split)
    elif path.is_dir():
        _digest_files(digest, path)
    else:
        raise BackendError(f"int8_calibration_data '{data}' does not exist")
    return digest.hexdigest()


def engine_key_fields(weights_sha256: str, precision: str, imgsz: int, batch: int,
                      dla_core: int, tensorrt_version: str, device: DeviceIdentity,
                      ultralytics: str, calibration: Optional[str] = None,
                      nms_free: bool = False) -> Dict[str, Any]:
    """
    Return everything a serialized engine depends on: any change means another engine.

    A plan only loads on the TensorRT version and GPU (compute capability) that built it, a DLA
    plan on its core; weights, precision, input size, batch and the exporter decide its content.
    The workspace size is left out: it changes build-time memory, not what the engine computes.
    """
    fields: Dict[str, Any] = {
        'kind': 'tensorrt-engine', 'schema': ENGINE_SCHEMA, 'weights_sha256': weights_sha256,
        'precision': precision, 'imgsz': int(imgsz), 'batch': int(batch),
        'dla_core': int(dla_core) if dla_core >= 0 else 'gpu',
        'tensorrt': tensorrt_version, 'gpu': device.name,
        'compute_capability': device.compute_capability, 'jetson_module': device.module,
        'ultralytics': ultralytics, 'nms_free': bool(nms_free)}
    if precision == 'int8':
        fields['int8_calibration'] = calibration
    return fields


def engine_export_request(model: ResolvedModel, config: 'DetectorConfig', precision: str,
                          device: str) -> ExportRequest:
    """Return the request that builds the engine (Ultralytics ``export(format='engine')``)."""
    if config.dla_core >= 0:
        export_device = f'dla:{config.dla_core}'  # Ultralytics traces on GPU 0, builds for DLA
    else:
        export_device = device.split(':', 1)[1] if ':' in device else '0'
    int8 = precision == 'int8'
    return ExportRequest(
        weights=model.path, format='engine', imgsz=config.imgsz, batch=config.batch,
        half=precision == 'fp16', int8=int8,
        data=str(Path(config.int8_calibration_data).expanduser().resolve()) if int8 else '',
        device=export_device,
        workspace_gb=config.workspace_gb if config.workspace_gb > 0 else None,
        nms_free=config.nms_free)


@dataclass
class EngineArtifact:
    """A cached engine and the key it is filed under."""

    path: Path
    key: str
    fields: Dict[str, Any]
    built: bool
    seconds: float = 0.0
    export: Dict[str, Any] = field(default_factory=dict)


class StageLog:
    """Logs configure stages with their own and the total elapsed time."""

    def __init__(self, log: Log):
        """Start the clock."""
        self._log = log
        self._start = self._last = monotonic()

    def __call__(self, message: str) -> None:
        """Log ``message`` with the time since the previous stage and since the start."""
        now = monotonic()
        self._log(f'[tensorrt] {message} ({now - self._last:.2f} s; {now - self._start:.1f} s '
                  'total)')
        self._last = now

    def note(self, message: str) -> None:
        """Log without timing (advice, warnings)."""
        self._log(f'[tensorrt] {message}')


def prepare_engine(model: ResolvedModel, config: 'DetectorConfig', device: str, precision: str,
                   log: Log, trt: Optional[ModuleType] = None, force: Optional[bool] = None,
                   stages: Optional[StageLog] = None) -> EngineArtifact:
    """
    Reuse the cached engine for this request or build it; return where it is and its key.

    Raises :class:`BackendError` when the request or the installed stack rules the build out,
    :class:`~..export.ExportError` when the build fails. ``force`` defaults to
    ``config.force_rebuild``.
    """
    stages = stages or StageLog(log)
    if model.format not in ('pt', 'onnx'):
        raise BackendError(f'{model.path.name} is not .pt or .onnx; nothing to build')
    reason = validate_tensorrt_request(precision, config.dla_core, config.int8_calibration_data,
                                       None)
    if reason is None and model.format == 'onnx' and precision == 'int8':
        reason = ('int8 from an .onnx file is not supported: INT8 calibration runs through '
                  "Ultralytics' exporter on the .pt weights; give the .pt or use fp16")
    if reason:
        raise BackendError(reason)
    trt = trt or runtime.import_tensorrt()
    caps = runtime.capabilities(trt)
    flags_missing = not (caps.fp16_builder_flag and caps.int8_builder_flag)
    modelopt = precision in ('fp16', 'int8') and flags_missing and modelopt_route_available()
    reason = check_stack_supports(precision, config.dla_core, caps, modelopt_available=modelopt)
    if reason:
        raise BackendError(reason)
    identity = runtime.device_identity(device)
    stages(f'TensorRT {caps.version} ({"name" if caps.name_api else "binding"} API, '
           f'{caps.dla_cores} DLA core(s)), GPU {identity.name} (compute '
           f'{identity.compute_capability}){" " + identity.module if identity.module else ""}')
    fields = engine_key_fields(
        sha256_of(model.path), precision, config.imgsz, config.batch, config.dla_core,
        caps.version, identity, ultralytics_version(),
        calibration_identity(config.int8_calibration_data) if precision == 'int8' else None,
        nms_free=config.nms_free)
    cache = ArtifactCache(config.cache_root())
    target = 'gpu' if config.dla_core < 0 else f'dla{config.dla_core}'
    path = cache.path_for(f'{model.stem}-{precision}-{target}', fields, '.engine')
    request = engine_export_request(model, config, precision, device)
    stages(f'engine key {key_of(fields)} ({path.name} in {cache.root}; waits here while another '
           'process builds the same engine)')
    extra: Dict[str, Any] = {'created': datetime.now().astimezone().isoformat(),
                             'model': str(model.path), 'export_device': request.device}
    result: Dict[str, Any] = {}

    def build(tmp: Path) -> None:
        stages.note(f'building the TensorRT {precision} engine for {model.path.name} on '
                    f'{"DLA core " + str(config.dla_core) if config.dla_core >= 0 else device} '
                    f'(imgsz {config.imgsz}, batch {config.batch}); {BUILD_NOTE}')
        if config.dla_core >= 0:
            stages.note('DLA: layers the DLA cannot run fall back to the GPU (GPU_FALLBACK); the '
                        "build log names them ('Switching this layer's device type to GPU')")
        t0 = monotonic()
        result.update(run_export(request, tmp, log=lambda line: log(f'[export] {line}'),
                                 timeout_s=config.export_timeout_s))
        extra['build_seconds'] = round(monotonic() - t0, 1)

    forced = config.force_rebuild if force is None else force
    if not forced and path.exists() and cache.lookup(path, fields) is None:
        # The cache checks size and hash against the sidecar: a damaged engine is a miss.
        stages.note(f'WARNING: the cached engine {path.name} is damaged (truncated, altered or '
                    'without its sidecar); rebuilding it')
    path, built = cache.get_or_build(path, fields, build, force=forced, extra=extra)
    stages(('built ' if built else 'reusing cached ') + str(path))
    return EngineArtifact(path, key_of(fields), fields, built,
                          float(extra.get('build_seconds', 0.0)), result)


def onnx_input_and_metadata(onnx_path: Path) -> Tuple[List[int], Dict[str, Any]]:
    """
    Return the first input's static shape (-1 where dynamic) and the Ultralytics metadata.

    Ultralytics stores metadata values in the ONNX as ``str(value)``; they are read back with
    ``ast.literal_eval`` where that works (names, imgsz, batch, end2end), else kept as text.
    """
    import ast
    import onnx
    model = onnx.load(str(onnx_path), load_external_data=False)
    metadata: Dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            metadata[prop.key] = ast.literal_eval(prop.value)
        except (ValueError, SyntaxError):
            metadata[prop.key] = prop.value
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [int(d.dim_value) if d.HasField('dim_value') else -1 for d in dims], metadata


def engine_from_onnx(args: Any) -> Dict[str, Any]:
    """
    Build an engine from an Ultralytics ONNX export (exporter child, ``--weights x.onnx``).

    Ultralytics' ``YOLO(...).export`` needs ``.pt`` weights, so an ONNX file goes straight to its
    ``onnx2engine`` (which also handles TensorRT 11's ModelOpt route) with the metadata header
    rebuilt from the ONNX. ``args`` are the exporter's parsed arguments. INT8 is refused: its
    calibration loader belongs to the exporter and needs the .pt.
    """
    import inspect
    import shutil
    import tempfile
    try:
        from ultralytics.utils.export.engine import onnx2engine
    except ImportError:  # Ultralytics 8.3.x kept it in one module
        from ultralytics.utils.export import onnx2engine  # type: ignore[no-redef]
    import ultralytics
    if args.int8:
        raise ValueError('int8 needs the .pt weights (calibration runs in the exporter)')
    shape, metadata = onnx_input_and_metadata(Path(args.weights))
    expected = [args.batch, 3, args.imgsz, args.imgsz]
    if shape != expected:
        raise ValueError(f'the ONNX input is {shape}, the engine needs the static {expected}: '
                         f'export the ONNX with imgsz {args.imgsz}, batch {args.batch}, '
                         'dynamic=False, or set imgsz/batch to match')
    dla = args.device.rsplit(':', 1)[-1] if 'dla' in args.device else None
    if dla is None and args.device not in ('', '0'):
        import torch  # the builder uses the current CUDA device
        torch.cuda.set_device(int(args.device))
    metadata.update(batch=args.batch, imgsz=[args.imgsz, args.imgsz])
    metadata['names'] = {int(k): str(v) for k, v in dict(metadata.get('names') or {}).items()}
    if dla is not None:
        metadata['dla'] = dla  # as Ultralytics writes it: the runtime must use this core
    kwargs: Dict[str, Any] = {'workspace': args.workspace, 'dynamic': False,
                              'shape': tuple(expected), 'dla': dla, 'metadata': metadata,
                              'verbose': False}
    if 'quantize' in inspect.signature(onnx2engine).parameters:  # Ultralytics >= 8.4
        kwargs['quantize'] = 16 if args.half else None
    else:
        kwargs.update(half=args.half, int8=False)
    out = Path(args.out)
    t0 = monotonic()
    # onnx2engine may write beside its input (TensorRT 11: ModelOpt's *.fp16.onnx): use a copy
    with tempfile.TemporaryDirectory(prefix='yjr-engine-', dir=str(out.parent)) as work:
        onnx_copy = Path(work) / Path(args.weights).name
        shutil.copy2(args.weights, onnx_copy)
        engine = Path(work) / 'model.engine'
        onnx2engine(str(onnx_copy), engine, **kwargs)
        shutil.move(str(engine), str(out))
    return {'format': 'engine', 'end2end': bool(metadata.get('end2end', False)),
            'names': metadata['names'], 'imgsz': [args.imgsz, args.imgsz], 'batch': args.batch,
            'stride': int(metadata.get('stride', 32)), 'ultralytics': ultralytics.__version__,
            'seconds': round(monotonic() - t0, 2)}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

class TensorRTBackend(Backend):
    """A TensorRT engine on a CUDA device (or a DLA core) behind the :class:`Backend` interface."""

    name = 'tensorrt'

    def __init__(self, runner: TensorRTRunner, info: ModelInfo, device: str, precision: str,
                 engine_path: Path, dla_core: Optional[int], fused: Optional[bool] = None,
                 compile_postprocess: bool = False):
        """
        Wrap a loaded runner (see :func:`load_engine`).

        ``fused`` (default: on CUDA devices) runs letterbox and NMS on the GPU around the engine
        (:mod:`yolo_jetson_ros.pipeline.gpu_pipeline`), writing into and reading from the
        engine's own bound buffers. It is not captured in a CUDA graph: TensorRT enqueues are
        capturable only under conditions (no DLA, no host-synchronising layers) that could not
        be verified here. ``compile_postprocess``: see :class:`GpuPipeline`.
        """
        super().__init__()
        self.runner = runner
        self.info = info
        self.device = device
        self.precision = precision
        self.engine_path = engine_path
        self.dla_core = dla_core
        self.has_fused_path = device.startswith('cuda') if fused is None else bool(fused)
        if self.has_fused_path:
            from ..gpu_pipeline import GpuPipeline
            engine_input, _ = runner.bound_tensors()
            self.pipeline = GpuPipeline(self._forward, info.input_hw, info.batch,
                                        engine_input.device, engine_input.dtype, info.end2end,
                                        info.num_classes, use_graph=False,
                                        input_tensor=engine_input,
                                        compile_postprocess=compile_postprocess)

    def _forward(self, tensor: Any) -> Any:
        """Run the engine on its bound input (``tensor``, filled by the pipeline)."""
        self.runner.execute_bound()
        return self.runner.bound_tensors()[1]

    def execute_only(self) -> None:
        """Run the engine alone on its bound buffers (the benchmark's bare forward)."""
        self.runner.execute_bound()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch; the returned array is reused by the next call."""
        return self.runner.infer(batch)

    def close(self) -> None:
        """Release the pipeline, then the engine and its buffers."""
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None
        self.runner.close()

    def describe(self) -> str:
        """Return the base description plus engine file and DLA core."""
        dla = f' dla_core={self.dla_core}' if self.dla_core is not None else ''
        return f'{super().describe()}{dla} engine={self.engine_path.name}'


def precision_from_metadata(metadata: Optional[Dict[str, Any]]) -> str:
    """Return fp32/fp16/int8 from Ultralytics metadata args ('unknown' for a plain plan)."""
    if not metadata:
        return 'unknown'
    args = metadata.get('args') or {}
    quantize = str(args.get('quantize', '')).lower()  # Ultralytics >= 8.4: 16, 8, 'fp16', ...
    if args.get('int8') is True or quantize in ('8', 'int8'):
        return 'int8'
    if args.get('half') is True or quantize in ('16', 'fp16'):
        return 'fp16'
    return 'fp32'


def model_info_from_engine(metadata: Optional[Dict[str, Any]], input_shape: Tuple[int, ...],
                           output_shape: Tuple[int, ...], log: Log) -> ModelInfo:
    """
    Return :class:`ModelInfo` from normalized engine metadata and the engine's I/O shapes.

    Without metadata (a plain plan) class names are ``str(index)`` and the layout comes from the
    output shape. With it, the output shape is checked against the class count: INT8 exports of
    NMS-free models on JetPack 6 fall back to the dense head, so the .pt alone cannot tell.
    """
    if len(input_shape) != 4 or input_shape[1] != 3:
        raise BackendError(f'engine input {input_shape} is not (B, 3, H, W)')
    if len(output_shape) != 3:
        raise BackendError(f'engine output {output_shape} is not a detection head '
                           '(B, 4 + classes, anchors) or (B, detections, 6)')
    meta = metadata or {}
    task = str(meta.get('task', 'detect'))
    if task != 'detect':
        raise BackendError(f"the engine is a '{task}' model; this node runs detection models")
    names: Dict[int, str] = dict(meta.get('names') or {})
    if names:
        dense = output_shape[1] == 4 + len(names)
        end2end = not dense and output_shape[2] == 6
        if not dense and not end2end:
            raise BackendError(f'engine output {output_shape} fits neither {len(names)} classes '
                               '(B, 4 + classes, anchors) nor (B, detections, 6)')
    else:
        end2end = bool(meta['end2end']) if 'end2end' in meta else is_end2end_output(output_shape)
        if end2end:
            log('[tensorrt] warning: the engine has no class names (no Ultralytics metadata) and '
                'an end-to-end head; detections carry numeric class ids')
        else:
            names = {i: str(i) for i in range(output_shape[1] - 4)}
    imgsz = meta.get('imgsz')
    if imgsz and list(imgsz) != [input_shape[2], input_shape[3]]:
        log(f'[tensorrt] warning: metadata says imgsz {imgsz}, the engine input is '
            f'{input_shape[2]}x{input_shape[3]}; using the engine input')
    return ModelInfo(names=names, input_hw=(int(input_shape[2]), int(input_shape[3])),
                     batch=int(input_shape[0]), stride=int(meta.get('stride', 32)),
                     end2end=end2end, task=task,
                     extra={'engine_metadata': metadata is not None})


def load_engine(trt: ModuleType, path: Path, device: str, dla_core: int, imgsz: int, batch: int,
                log: Log, precision: Optional[str] = None,
                compile_postprocess: bool = False) -> TensorRTBackend:
    """
    Load an engine file into a :class:`TensorRTBackend`.

    ``dla_core`` >= 0 wins over the metadata's ``dla``; ``imgsz``/``batch`` fill dynamic input
    dimensions when the metadata does not. Raises :class:`EngineFileError` or
    :class:`StaleEngineError` when the file or plan is unusable.
    """
    meta = runtime.read_engine_metadata(path) or {}  # header only: sizes for dynamic inputs
    meta = runtime.normalize_metadata(meta)
    if dla_core >= 0 and meta.get('dla') is not None and meta['dla'] != dla_core:
        log(f"[tensorrt] the engine was built for DLA core {meta['dla']}; running it on core "
            f'{dla_core} as configured')
    hw = meta.get('imgsz') or [imgsz, imgsz]
    shape = (int(meta.get('batch', batch)), 3, int(hw[0]), int(hw[1]))
    runner = TensorRTRunner.from_engine_file(trt, path, device=device, dla_core=dla_core,
                                             input_shape=shape,
                                             log=lambda m: log(f'[tensorrt] {m}'))
    try:
        info = model_info_from_engine(runner.metadata, runner.input_shape, runner.output_shape,
                                      log)
    except BackendError:
        runner.close()
        raise
    return TensorRTBackend(runner, info, device,
                           precision or precision_from_metadata(runner.metadata), path,
                           runner.dla_core, compile_postprocess=compile_postprocess)


def _require_cuda(device: str) -> None:
    if not device.startswith('cuda'):
        return  # host buffers: only a fake TensorRT module (tests) can run that
    try:
        import torch
    except ImportError as exc:
        raise BackendError('the TensorRT backend needs torch for its CUDA buffers') from exc
    if not torch.cuda.is_available():
        raise BackendError(f'device {device}: torch sees no CUDA device, TensorRT needs one')


def _signature(path: Path) -> Optional[Tuple[int, int, int]]:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _invalidate_if_unchanged(cache: ArtifactCache, path: Path,
                             signature: Optional[Tuple[int, int, int]]) -> None:
    # Under the lock, and only if it is still the file that failed: another process may have
    # replaced it with a good build meanwhile.
    with cache.lock(path):
        if signature is not None and _signature(path) == signature:
            cache.invalidate(path)


def create_tensorrt_backend(model: ResolvedModel, config: 'DetectorConfig', device: str,
                            precision: str, log: Log) -> Backend:
    """Return a loaded TensorRT backend for ``model``: given engine, cached engine or new build."""
    stages = StageLog(log)
    trt = runtime.import_tensorrt()
    _require_cuda(device)
    if model.format == 'engine':
        try:
            backend = load_engine(trt, model.path, device, config.dla_core, config.imgsz,
                                  config.batch, log,
                                  compile_postprocess=config.compile_postprocess)
        except (EngineFileError, StaleEngineError) as exc:
            raise BackendError(f'{exc}; rebuild {model.path.name} with TensorRT '
                               f'{trt.__version__} on this machine (e.g. build_engine from the '
                               '.pt weights)') from exc
        stages(f'loaded {model.path} ({backend.describe()})')
        return backend
    artifact = prepare_engine(model, config, device, precision, log, trt=trt, stages=stages)
    signature = _signature(artifact.path)
    try:
        backend = load_engine(trt, artifact.path, device, config.dla_core, config.imgsz,
                              config.batch, log, precision,
                              compile_postprocess=config.compile_postprocess)
    except (EngineFileError, StaleEngineError) as exc:
        if artifact.built:
            raise BackendError(f'the engine just built ({artifact.path}) does not load: '
                               f'{exc}') from exc
        stages.note(f'WARNING: the cached engine {artifact.path.name} does not load ({exc}); '
                    'removing it and rebuilding once')
        _invalidate_if_unchanged(ArtifactCache(config.cache_root()), artifact.path, signature)
        artifact = prepare_engine(model, config, device, precision, log, trt=trt, force=False,
                                  stages=stages)
        try:
            backend = load_engine(trt, artifact.path, device, config.dla_core, config.imgsz,
                                  config.batch, log, precision,
                                  compile_postprocess=config.compile_postprocess)
        except (EngineFileError, StaleEngineError) as again:
            raise BackendError(f'the rebuilt engine {artifact.path} does not load either: '
                               f'{again}') from again
    stages(f'deserialized and allocated ({backend.describe()})')
    return backend


__all__ = ['EngineArtifact', 'StageLog', 'TensorRTBackend', 'calibration_identity',
           'check_stack_supports', 'create_tensorrt_backend', 'dla_core_count',
           'engine_export_request', 'engine_key_fields', 'is_jetson', 'load_engine',
           'model_info_from_engine', 'modelopt_route_available', 'precision_from_metadata',
           'prepare_engine', 'ultralytics_version', 'validate_tensorrt_request']
