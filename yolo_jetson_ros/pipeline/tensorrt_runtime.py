# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The one seam that touches the ``tensorrt`` module: engine files, deserialization, I/O, versions.

Nothing here imports ``tensorrt`` at module level. Every function takes the module object as an
argument, so the ROS node imports this file on machines without TensorRT and tests pass a fake
(``test/fake_tensorrt.py``). What differs between the TensorRT versions a Jetson meets
(JP5 8.5, JP6.0 8.6, JP6.1+ 10.3, JP7 10.13/11.x) is detected by feature at run time, never
from a JetPack number:

* I/O discovery and execution: the name API (``num_io_tensors``, ``get_tensor_*``,
  ``set_tensor_address`` + ``execute_async_v3``) exists from TensorRT 8.5 on and is the only one in
  10 and 11; the binding API (``num_bindings``, ``get_binding_*``, ``execute_async_v2``) is used
  only where the name API is missing (TensorRT <= 8.4).
* ``deserialize_cuda_engine`` returns ``None`` (no exception) for a plan from another TensorRT
  version, GPU or DLA core; that becomes :class:`StaleEngineError` carrying the logger's reason.
* Builder capabilities (:func:`capabilities`): TensorRT 11 removed the FP16/INT8 builder flags and
  shipped without DLA until 11.4.

Engine files may start with Ultralytics' metadata header: a 4-byte little-endian signed length N,
then N bytes of JSON, then the plan. Plain ``trtexec`` plans have no header.
"""

from contextlib import suppress
from dataclasses import dataclass, field
import importlib.util
from json import dumps, loads
from pathlib import Path
from re import findall
import sys
from threading import Lock
from types import ModuleType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from typing import TYPE_CHECKING

import numpy as np

from .backends.base import BackendError

if TYPE_CHECKING:  # tensorrt-stubs type runtime/engine/context; never imported at run time
    import tensorrt

Log = Callable[[str], None]

HEADER_LENGTH_BYTES = 4
# Ultralytics writes about 2 KB of JSON (80 class names). A "length" beyond 1 MiB is not a length
# but plan bytes or corruption, and must never make us allocate or read gigabytes.
MAX_METADATA_BYTES = 1 << 20
# TensorRT 11.0-11.3 shipped without DLA; 11.4 re-enabled it (AGX Orin, JetPack 7.2.2+).
DLA_MISSING_FROM = (11, 0)
DLA_BACK_IN = (11, 4)


class EngineFileError(BackendError):
    """The engine file cannot be split into metadata and plan: empty, truncated, corrupt header."""


class StaleEngineError(BackendError):
    """
    TensorRT refused the plan: built by another TensorRT version, GPU or DLA core, or corrupt.

    ``messages`` holds what TensorRT's logger said while refusing (the actual reason).
    """

    def __init__(self, message: str, messages: Sequence[str] = ()):
        """Keep TensorRT's own error lines beside the summary."""
        details = '; '.join(messages)
        super().__init__(f'{message}: {details}' if details else message)
        self.messages: List[str] = list(messages)


# ---------------------------------------------------------------------------------------------
# Engine file: Ultralytics metadata header + plan
# ---------------------------------------------------------------------------------------------

@dataclass
class EngineFile:
    """An engine file split into its Ultralytics metadata (None for a plain plan) and its plan."""

    metadata: Optional[Dict[str, Any]]
    plan: bytes


def _looks_like_json_header(data: bytes) -> bool:
    # json.dumps of a dict starts with '{"' (or is '{}'). TensorRT plans start with a binary magic
    # tag, so these two bytes after the length tell Ultralytics' layout from a trtexec plan.
    return data[HEADER_LENGTH_BYTES:HEADER_LENGTH_BYTES + 1] == b'{' and \
        data[HEADER_LENGTH_BYTES + 1:HEADER_LENGTH_BYTES + 2] in (b'"', b'}')


def _parse_header(head: bytes, total_size: int,
                  source: str) -> Tuple[Optional[Dict[str, Any]], int]:
    """Return ``(metadata or None, offset of the plan)`` from the first bytes of an engine file."""
    if total_size < HEADER_LENGTH_BYTES + 1:
        raise EngineFileError(f'{source}: {total_size} bytes is too short for a TensorRT engine '
                              '(empty or truncated file)')
    if not _looks_like_json_header(head):
        return None, 0  # a plain plan (trtexec, Polygraphy): TensorRT itself judges it
    length = int.from_bytes(head[:HEADER_LENGTH_BYTES], 'little', signed=True)
    if not 0 < length <= MAX_METADATA_BYTES:
        raise EngineFileError(f'{source}: the metadata header claims {length} bytes of JSON '
                              f'(plausible: 1 to {MAX_METADATA_BYTES}); the file is corrupt')
    end = HEADER_LENGTH_BYTES + length
    if end > total_size:
        raise EngineFileError(f'{source}: truncated inside its metadata header '
                              f'({total_size - HEADER_LENGTH_BYTES} of {length} bytes)')
    try:
        metadata = loads(head[HEADER_LENGTH_BYTES:end].decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EngineFileError(f'{source}: the metadata header is not valid JSON ({exc}); '
                              'the file is corrupt') from None
    if not isinstance(metadata, dict):
        raise EngineFileError(f'{source}: the metadata header is JSON but not an object')
    if end >= total_size:
        raise EngineFileError(f'{source}: metadata but no TensorRT plan after it (truncated file)')
    return metadata, end


def split_engine(data: bytes, source: str = 'engine') -> EngineFile:
    """Split engine bytes into metadata and plan; raise :class:`EngineFileError` if corrupt."""
    metadata, offset = _parse_header(data, len(data), source)
    return EngineFile(metadata, data[offset:])


def read_engine_file(path: Path) -> EngineFile:
    """Read an engine file (Ultralytics header optional)."""
    return split_engine(Path(path).read_bytes(), str(path))


def read_engine_metadata(path: Path) -> Optional[Dict[str, Any]]:
    """Return an engine file's Ultralytics metadata without reading its plan (None if absent)."""
    path = Path(path)
    with open(path, 'rb') as f:
        head = f.read(HEADER_LENGTH_BYTES + MAX_METADATA_BYTES)
    return _parse_header(head, path.stat().st_size, str(path))[0]


def encode_engine(metadata: Optional[Mapping[str, Any]], plan: bytes) -> bytes:
    """
    Return the bytes of an engine file in Ultralytics' layout (no header when metadata is None).

    The length counts UTF-8 bytes. Ultralytics counts characters, which is the same thing here
    because ``json.dumps`` escapes every non-ASCII character.
    """
    if metadata is None:
        return bytes(plan)
    text = dumps(dict(metadata)).encode('utf-8')
    return len(text).to_bytes(HEADER_LENGTH_BYTES, 'little', signed=True) + text + bytes(plan)


def write_engine_file(path: Path, metadata: Optional[Mapping[str, Any]], plan: bytes) -> None:
    """Write an engine file in Ultralytics' layout."""
    Path(path).write_bytes(encode_engine(metadata, plan))


def normalize_metadata(metadata: Mapping[str, Any]) -> Dict[str, Any]:
    """
    Return Ultralytics engine metadata with JSON's strings turned back into ints and lists.

    ``names`` keys become ints, ``imgsz`` a ``[h, w]`` list, ``batch``/``stride`` ints and ``dla``
    (written as the string ``"0"``) an int.
    """
    out = dict(metadata)
    names = metadata.get('names')
    if isinstance(names, dict):
        out['names'] = {int(k): str(v) for k, v in names.items()}
    elif isinstance(names, list):
        out['names'] = {i: str(v) for i, v in enumerate(names)}
    imgsz = metadata.get('imgsz')
    if isinstance(imgsz, int):
        out['imgsz'] = [imgsz, imgsz]
    elif isinstance(imgsz, (list, tuple)) and len(imgsz) == 2:
        out['imgsz'] = [int(imgsz[0]), int(imgsz[1])]
    for key in ('batch', 'stride'):
        if key in metadata:
            out[key] = int(metadata[key])
    if metadata.get('dla') is not None:
        out['dla'] = int(metadata['dla'])
    return out


# ---------------------------------------------------------------------------------------------
# Versions, capabilities, device identity
# ---------------------------------------------------------------------------------------------

def import_tensorrt() -> ModuleType:
    """
    Import the TensorRT Python bindings, or raise :class:`BackendError` saying what to install.

    ``pip install tensorrt-stubs`` leaves a ``tensorrt`` folder of ``.pyi`` files that imports as
    an empty namespace package, so a successful import alone does not mean TensorRT is there.
    """
    loaded: Optional[ModuleType] = sys.modules.get('tensorrt')
    if loaded is None:
        spec = importlib.util.find_spec('tensorrt')
        if spec is None:
            raise BackendError('TensorRT Python bindings are not installed (JetPack ships them '
                               'as python3-libnvinfer); use backend onnxruntime or torch')
        if spec.origin in (None, 'namespace'):
            # do not import it: a file-less namespace module in sys.modules makes
            # inspect.getmodule() (rclpy's logger uses it) raise TypeError
            raise BackendError("the importable 'tensorrt' module is not TensorRT (only its type "
                               'stubs are installed); use backend onnxruntime or torch')
        import tensorrt
        loaded = tensorrt
    if not hasattr(loaded, 'Runtime'):
        raise BackendError("the importable 'tensorrt' module is not TensorRT (only its type stubs "
                           'are installed); use backend onnxruntime or torch')
    return loaded


def tensorrt_available() -> bool:
    """Return True when the real TensorRT bindings (not only their stubs) can be imported."""
    try:
        import_tensorrt()
    except BackendError:
        return False
    return True


def parse_version(version: str) -> Tuple[int, int]:
    """Return ``(major, minor)`` of a version such as ``10.3.0.30``; unparsable parts are 0."""
    numbers = [int(n) for n in findall(r'\d+', version)[:2]]
    while len(numbers) < 2:
        numbers.append(0)
    return numbers[0], numbers[1]


@dataclass(frozen=True)
class TensorRTCapabilities:
    """What the installed TensorRT can do, found by looking at the module, not at JetPack."""

    version: str
    major: int
    minor: int
    fp16_builder_flag: bool  # BuilderFlag.FP16: present up to TensorRT 10, removed in 11
    int8_builder_flag: bool  # BuilderFlag.INT8 (with IInt8Calibrator): same
    dla_in_this_version: bool  # False for TensorRT 11.0-11.3, which shipped without DLA
    dla_cores: int  # what the TensorRT runtime reports (0 off Jetson, on Orin Nano and Thor)
    name_api: bool  # ICudaEngine has num_io_tensors (TensorRT >= 8.5)

    @property
    def strongly_typed_only(self) -> bool:
        """Return True from TensorRT 11 on: precision lives in the ONNX graph, not in flags."""
        return self.major >= 11

    @property
    def dla_usable(self) -> bool:
        """Return True when this TensorRT supports DLA and the machine has at least one core."""
        return self.dla_in_this_version and self.dla_cores > 0


def runtime_dla_cores(trt: ModuleType) -> int:
    """Return ``Runtime.num_DLA_cores`` (0 when TensorRT cannot tell, e.g. without a GPU)."""
    logger, _ = install_error_logger(trt)
    try:
        return int(getattr(trt.Runtime(logger), 'num_DLA_cores', 0))
    except Exception:  # no CUDA device, driver mismatch: then there is no DLA to use either
        return 0


def capabilities(trt: ModuleType, dla_cores: Optional[int] = None) -> TensorRTCapabilities:
    """Return the capabilities of the TensorRT module ``trt`` (DLA cores from its runtime)."""
    version = str(getattr(trt, '__version__', '0'))
    major, minor = parse_version(version)
    flags = getattr(trt, 'BuilderFlag', None)
    dla_in_version = not (DLA_MISSING_FROM <= (major, minor) < DLA_BACK_IN)
    engine_class = getattr(trt, 'ICudaEngine', None)
    return TensorRTCapabilities(
        version=version, major=major, minor=minor,
        fp16_builder_flag=flags is not None and hasattr(flags, 'FP16'),
        int8_builder_flag=flags is not None and hasattr(flags, 'INT8'),
        dla_in_this_version=dla_in_version,
        dla_cores=runtime_dla_cores(trt) if dla_cores is None else int(dla_cores),
        name_api=engine_class is not None and hasattr(engine_class, 'num_io_tensors'))


@dataclass(frozen=True)
class DeviceIdentity:
    """The GPU a plan is tied to (TensorRT refuses plans built for another compute capability)."""

    name: str = 'unknown'
    compute_capability: str = 'unknown'  # '8.7' (Orin), '7.2' (Xavier), '11.0' (Thor, CUDA 13)
    module: str = ''  # /proc/device-tree/model on a Jetson: tells AGX Orin from Orin NX (same sm)


def _jetson_module(root: Path = Path('/')) -> str:
    try:
        return (root / 'proc/device-tree/model').read_bytes().rstrip(b'\0').decode(
            'utf-8', 'replace').strip()
    except OSError:
        return ''


def device_identity(device: str = 'cuda:0') -> DeviceIdentity:
    """Return GPU name and compute capability through torch.cuda ('unknown' without CUDA)."""
    module = _jetson_module()
    try:
        import torch
        if not torch.cuda.is_available():
            return DeviceIdentity(module=module)
        index = torch.device(device).index if device.startswith('cuda') else None
        index = 0 if index is None else index
        major, minor = torch.cuda.get_device_capability(index)
        return DeviceIdentity(str(torch.cuda.get_device_name(index)), f'{major}.{minor}', module)
    except Exception:  # no torch, broken driver: the key then says 'unknown'
        return DeviceIdentity(module=module)


# ---------------------------------------------------------------------------------------------
# Logger
# ---------------------------------------------------------------------------------------------

@dataclass
class LogRecord:
    """Messages the recording logger received, kept for the text of a later exception."""

    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    lock: Lock = field(default_factory=Lock, repr=False)

    def mark(self) -> Tuple[int, int]:
        """Return a position to pass to :meth:`since`."""
        with self.lock:
            return len(self.errors), len(self.warnings)

    def since(self, mark: Tuple[int, int]) -> Tuple[List[str], List[str]]:
        """Return the ``(errors, warnings)`` logged after ``mark``."""
        with self.lock:
            return self.errors[mark[0]:], self.warnings[mark[1]:]


# One logger per TensorRT module and process: TensorRT keeps the first logger it is given for its
# global messages (it warns when later runtimes bring another one) and holds a raw pointer to it,
# so the Python object must never be garbage-collected. Keyed by id() of the module.
_LOGGERS: Dict[int, Tuple[Any, LogRecord]] = {}
_LOGGERS_LOCK = Lock()
_MAX_KEPT = 200


def install_error_logger(trt: ModuleType) -> Tuple[Any, LogRecord]:
    """
    Return ``(logger, record)``: this process's ``trt.ILogger`` subclass that records errors.

    Created on first use; pass the logger to ``trt.Runtime``. Errors and warnings go into
    ``record`` so a refused deserialization can say why.
    """
    with _LOGGERS_LOCK:
        existing = _LOGGERS.get(id(trt))
        if existing is not None:
            return existing
        record = LogRecord()
        error_levels = {int(trt.ILogger.INTERNAL_ERROR), int(trt.ILogger.ERROR)}
        warning_level = int(trt.ILogger.WARNING)
        base = trt.ILogger

        class RecordingLogger(base):  # type: ignore[misc,valid-type]
            """Keeps TensorRT's errors and warnings (bounded) instead of printing them."""

            def __init__(self) -> None:
                """Initialise the pybind11 base explicitly, as TensorRT requires."""
                base.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                """Record one message from TensorRT (called from TensorRT's threads too)."""
                level = int(severity)
                target = record.errors if level in error_levels else \
                    record.warnings if level == warning_level else None
                if target is not None:
                    with record.lock:
                        target.append(str(msg))
                        del target[:-_MAX_KEPT]

        entry = (RecordingLogger(), record)
        _LOGGERS[id(trt)] = entry
        return entry


# ---------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorSpec:
    """One engine input or output, with its shape resolved for this execution context."""

    name: str
    index: int
    is_input: bool
    shape: Tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        """Return the buffer size in bytes."""
        return int(np.prod(self.shape)) * self.dtype.itemsize


def _dims(dims: Any) -> Tuple[int, ...]:
    # TensorRT's Dims has __len__/__getitem__ but no __iter__ in its stubs: index explicitly.
    return tuple(int(dims[i]) for i in range(len(dims)))


class TensorRTRunner:
    """
    A deserialized engine with its execution context and preallocated I/O buffers.

    Buffers are torch tensors on ``device`` (torch is a dependency of the GPU path); inference
    runs on a dedicated CUDA stream. ``device='cpu'`` puts the buffers in host memory: only a fake
    TensorRT module (tests) can use that, real TensorRT needs device pointers.
    """

    def __init__(self, trt: ModuleType, plan: bytes, device: str = 'cuda:0',
                 dla_core: Optional[int] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 log: Log = lambda _m: None):
        """
        Deserialize ``plan``, allocate buffers; raise :class:`StaleEngineError` if refused.

        ``dla_core`` (>= 0) is set on the runtime before deserializing, which is where TensorRT
        binds DLA loadables to a core. ``input_shape`` fills dynamic input dimensions (default:
        the optimization profile's opt shape).
        """
        try:
            import torch
        except ImportError as exc:
            raise BackendError('the TensorRT backend allocates its buffers with torch; '
                               'install torch (JetPack wheel on a Jetson)') from exc
        self._torch = torch
        self._trt = trt
        self._log = log
        self.metadata: Optional[Dict[str, Any]] = None  # set by from_engine_file
        self.dla_core = dla_core if dla_core is not None and dla_core >= 0 else None
        self.device = torch.device(device)
        self._cuda = self.device.type == 'cuda'
        self.logger, self.record = install_error_logger(trt)
        self.runtime: 'tensorrt.Runtime' = trt.Runtime(self.logger)
        if dla_core is not None and dla_core >= 0:
            self.runtime.DLA_core = int(dla_core)
        mark = self.record.mark()
        try:
            engine: Optional['tensorrt.ICudaEngine'] = self.runtime.deserialize_cuda_engine(plan)
        except Exception as exc:  # some versions raise instead of returning None
            raise StaleEngineError(f'TensorRT {trt.__version__} could not deserialize the plan '
                                   f'({exc})', self.record.since(mark)[0]) from exc
        if engine is None:
            raise StaleEngineError(
                f'TensorRT {trt.__version__} refused the plan (built by another TensorRT version, '
                'for another GPU or DLA core, or corrupt)', self.record.since(mark)[0])
        self.engine: 'tensorrt.ICudaEngine' = engine
        # The plan deserialized, so a failure here is about resources (device memory), not a
        # stale plan: a BackendError, which does not trigger a rebuild.
        context: Optional['tensorrt.IExecutionContext'] = None
        failure: List[str] = []
        try:
            context = engine.create_execution_context()
        except Exception as exc:  # pybind11 turns TensorRT errors into RuntimeError and others
            failure.append(str(exc))
        if context is None:
            reasons = self.record.since(mark)[0] + failure
            raise BackendError('TensorRT could not create an execution context (out of device '
                               'memory?)' + (f': {"; ".join(reasons)}' if reasons else ''))
        self.context: 'tensorrt.IExecutionContext' = context
        # Branch by feature: num_io_tensors exists from TensorRT 8.5 on (the only API in 10/11).
        # Only without it (TensorRT <= 8.4) is hasattr(engine, 'num_bindings') checked and the
        # binding API used. Ultralytics tests num_bindings first and so takes the legacy path on
        # 8.5/8.6; the name API there is equivalent and is what 10/11 need anyway.
        if hasattr(engine, 'num_io_tensors'):
            self.api = 'name'
            self.tensors = self._discover_by_name(input_shape)
        elif hasattr(engine, 'num_bindings'):
            self.api = 'binding'
            self.tensors = self._discover_by_binding(input_shape)
        else:
            raise BackendError(f'TensorRT {trt.__version__}: the engine has neither the name nor '
                               'the binding I/O API')
        self.inputs = [t for t in self.tensors if t.is_input]
        outputs = sorted((t for t in self.tensors if not t.is_input), key=lambda t: t.name)
        if len(self.inputs) != 1 or not outputs:
            raise BackendError(f'expected one input and at least one output, the engine has '
                               f'{[t.name for t in self.tensors]}')
        self.outputs = outputs
        self._allocate()
        for message in self.record.since(mark)[1]:
            log(f'TensorRT warning: {message}')

    @classmethod
    def from_engine_file(cls, trt: ModuleType, path: Path, device: str = 'cuda:0',
                         dla_core: Optional[int] = None,
                         input_shape: Optional[Sequence[int]] = None,
                         log: Log = lambda _m: None) -> 'TensorRTRunner':
        """
        Load an engine file; the DLA core is ``dla_core`` if >= 0, else the metadata's ``dla``.

        The normalized metadata (None for a plain plan) is kept as :attr:`metadata`.
        """
        engine = read_engine_file(path)
        metadata = normalize_metadata(engine.metadata) if engine.metadata is not None else None
        core = dla_core if dla_core is not None and dla_core >= 0 else \
            (metadata or {}).get('dla')
        runner = cls(trt, engine.plan, device=device, dla_core=core, input_shape=input_shape,
                     log=log)
        runner.metadata = metadata
        return runner

    # -- I/O discovery ------------------------------------------------------------------------

    def _target_shape(self, static: Tuple[int, ...], profile_opt: Callable[[], Tuple[int, ...]],
                      requested: Optional[Sequence[int]]) -> Tuple[int, ...]:
        if all(d >= 0 for d in static):
            return static
        if requested is not None:
            if len(requested) != len(static) or any(
                    s >= 0 and s != int(r) for s, r in zip(static, requested)):
                raise BackendError(f'input shape {tuple(requested)} does not fit the engine '
                                   f'input {static}')
            return tuple(int(r) for r in requested)
        return profile_opt()

    def _discover_by_name(self, requested: Optional[Sequence[int]]) -> List[TensorSpec]:
        trt, engine, context = self._trt, self.engine, self.context
        specs: List[TensorSpec] = []
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        for index, name in enumerate(names):
            if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            static = _dims(engine.get_tensor_shape(name))
            shape = self._target_shape(
                static, lambda: _dims(engine.get_tensor_profile_shape(name, 0)[1]), requested)
            if shape != static and not context.set_input_shape(name, shape):
                raise BackendError(f'TensorRT rejected input shape {shape} for {name}')
            specs.append(TensorSpec(name, index, True, shape,
                                    np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
        for index, name in enumerate(names):
            if engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
                continue
            shape = _dims(context.get_tensor_shape(name))  # resolved once inputs are set
            specs.append(TensorSpec(name, index, False, shape,
                                    np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
        return sorted(specs, key=lambda s: s.index)

    def _discover_by_binding(self, requested: Optional[Sequence[int]]) -> List[TensorSpec]:
        # TensorRT <= 8.4 only; these calls are absent from the TensorRT 10 stubs, hence Any.
        trt = self._trt
        engine: Any = self.engine
        context: Any = self.context
        specs: List[TensorSpec] = []
        for i in range(engine.num_bindings):
            if not engine.binding_is_input(i):
                continue
            static = _dims(engine.get_binding_shape(i))
            shape = self._target_shape(
                static, lambda: _dims(engine.get_profile_shape(0, i)[1]), requested)
            if shape != static and not context.set_binding_shape(i, shape):
                raise BackendError(f'TensorRT rejected input shape {shape} for binding {i}')
            specs.append(TensorSpec(str(engine.get_binding_name(i)), i, True, shape,
                                    np.dtype(trt.nptype(engine.get_binding_dtype(i)))))
        for i in range(engine.num_bindings):
            if engine.binding_is_input(i):
                continue
            specs.append(TensorSpec(str(engine.get_binding_name(i)), i, False,
                                    _dims(context.get_binding_shape(i)),
                                    np.dtype(trt.nptype(engine.get_binding_dtype(i)))))
        return sorted(specs, key=lambda s: s.index)

    # -- buffers ------------------------------------------------------------------------------

    def _allocate(self) -> None:
        torch = self._torch
        if any(d < 0 for t in self.tensors for d in t.shape):
            raise BackendError('unresolved dynamic shapes: '
                               f'{[(t.name, t.shape) for t in self.tensors]}')

        def empty(spec: TensorSpec, device: Any, pin: bool = False) -> Any:
            dtype = torch.from_numpy(np.empty(0, spec.dtype)).dtype
            return torch.empty(spec.shape, dtype=dtype, device=device, pin_memory=pin)

        self._buffers = {t.name: empty(t, self.device) for t in self.tensors}
        self._stream = torch.cuda.Stream(device=self.device) if self._cuda else None
        # Pinned host staging buffers let the copies run asynchronously on our stream.
        host = (lambda spec: empty(spec, 'cpu', pin=True)) if self._cuda else \
            (lambda spec: self._buffers[spec.name])
        self._host_in = host(self.inputs[0])
        self._host_out = host(self.outputs[0])
        self._host_in_np: np.ndarray = self._host_in.numpy()
        self._host_out_np: np.ndarray = self._host_out.numpy()
        self._result = np.empty(self.outputs[0].shape, np.float32)
        if self.api == 'name':
            for spec in self.tensors:
                address = int(self._buffers[spec.name].data_ptr())
                ok = self.context.set_tensor_address(spec.name, address)
                if ok is False:
                    raise BackendError(f'TensorRT rejected the buffer address of {spec.name}')
        else:
            self._bindings = [0] * len(self.tensors)
            for spec in self.tensors:
                self._bindings[spec.index] = int(self._buffers[spec.name].data_ptr())

    # -- inference ----------------------------------------------------------------------------

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """Return the (B, 3, H, W) input shape."""
        return self.inputs[0].shape

    @property
    def output_shape(self) -> Tuple[int, ...]:
        """Return the shape of the first output by name (``output0``: the detection head)."""
        return self.outputs[0].shape

    def _execute(self, stream_handle: int) -> bool:
        if self.api == 'name':
            return bool(self.context.execute_async_v3(stream_handle))
        context: Any = self.context
        if hasattr(context, 'execute_async_v2'):
            return bool(context.execute_async_v2(self._bindings, stream_handle))
        return bool(context.execute_v2(self._bindings))

    def bound_tensors(self) -> Tuple[Any, Any]:
        """Return the torch tensors bound as the engine's first input and first output."""
        return self._buffers[self.inputs[0].name], self._buffers[self.outputs[0].name]

    def execute_bound(self) -> None:
        """
        Run the engine on what its bound input holds, on torch's current stream; no copies.

        The fused GPU path letterboxes straight into :meth:`bound_tensors`' input and decodes
        the output on the device; it synchronises the stream itself. Raises
        :class:`BackendError` (with TensorRT's messages) when the enqueue fails.
        """
        mark = self.record.mark()
        stream = (int(self._torch.cuda.current_stream(self.device).cuda_stream) if self._cuda
                  else 0)
        if not self._execute(stream):
            self._raise_execution_failed(mark)

    def _raise_execution_failed(self, mark: Tuple[int, int]) -> None:
        errors = self.record.since(mark)[0]
        raise BackendError('TensorRT execution failed' + (f': {"; ".join(errors)}' if errors
                                                          else ''))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """
        Run one (B, 3, H, W) float32 batch; return the first output as float32.

        The returned array is reused by the next call.
        """
        if tuple(batch.shape) != self.input_shape:
            raise ValueError(f'batch shape {tuple(batch.shape)} != engine input '
                             f'{self.input_shape}')
        mark = self.record.mark()
        np.copyto(self._host_in_np, batch, casting='same_kind')  # float32 -> float16 I/O too
        if self._stream is not None:
            torch = self._torch
            with torch.cuda.stream(self._stream):
                self._buffers[self.inputs[0].name].copy_(self._host_in, non_blocking=True)
                ok = self._execute(int(self._stream.cuda_stream))
                self._host_out.copy_(self._buffers[self.outputs[0].name], non_blocking=True)
            self._stream.synchronize()
        else:
            ok = self._execute(0)
        if not ok:
            self._raise_execution_failed(mark)
        if self._host_out_np.dtype == np.float32:
            return self._host_out_np
        np.copyto(self._result, self._host_out_np, casting='unsafe')  # fp16 output I/O
        return self._result

    def close(self) -> None:
        """Release context, engine, runtime and buffers (in that order, as TensorRT requires)."""
        for name in ('context', 'engine', 'runtime'):
            with suppress(AttributeError):
                delattr(self, name)
        self._buffers = {}
        self._host_in = self._host_out = None
        if self._cuda:
            self._torch.cuda.empty_cache()


__all__ = ['DeviceIdentity', 'EngineFile', 'EngineFileError', 'LogRecord', 'StaleEngineError',
           'TensorRTCapabilities', 'TensorRTRunner', 'TensorSpec', 'capabilities',
           'device_identity', 'encode_engine', 'import_tensorrt', 'install_error_logger',
           'normalize_metadata', 'parse_version', 'read_engine_file', 'read_engine_metadata',
           'runtime_dla_cores', 'split_engine', 'tensorrt_available', 'write_engine_file']
