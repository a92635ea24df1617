# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
A FAKE ``tensorrt`` module for tests. It is NOT NVIDIA TensorRT and runs no TensorRT code.

It implements exactly the subset of the TensorRT 10 Python API that
``yolo_jetson_ros.pipeline.tensorrt_runtime`` uses, with the same class, method, attribute and
parameter names as the TensorRT 10.13 stubs (``test_tensorrt_typing.py`` checks that):
``ILogger``/``Logger``, ``Runtime`` (``DLA_core``, ``num_DLA_cores``, ``deserialize_cuda_engine``),
``ICudaEngine`` (name API), ``IExecutionContext`` (``set_input_shape``, ``get_tensor_shape``,
``set_tensor_address``, ``execute_async_v3``), ``TensorIOMode``, ``DataType``, ``BuilderFlag``,
``nptype`` and ``__version__``. Names starting with ``_`` are test controls, not TensorRT API.

A fake "plan" is ``_PLAN_MAGIC`` followed by JSON: the TensorRT version and DLA core it was
"built" for, the I/O tensors, and what to compute: ``onnx`` (run that ONNX file with ONNX Runtime
on the CPU, so detections are real) or ``rows`` (a constant end-to-end output). Engine files carry
Ultralytics' metadata header in front, written by the code under test.

Behaviour modelled on real TensorRT (see shared/docs/tensorrt-notes.md):

* ``deserialize_cuda_engine`` returns ``None`` and logs an error for a plan of another TensorRT
  version, a corrupt plan, or a DLA plan whose core differs from ``Runtime.DLA_core`` at that
  moment (``DLA_core`` defaults to -1 here, so forgetting to set it is observable).
* ``execute_async_v3`` reads the inputs from, and writes the outputs to, the raw addresses given
  to ``set_tensor_address`` (host memory here), and fails when one is missing.
"""

import ctypes
import enum
import json
import sys
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

__version__ = '10.13.0.35'

_PLAN_MAGIC = b'FAKETRT1'
_NUM_DLA_CORES = 0  # what Runtime.num_DLA_cores reports; tests monkeypatch it
_DESERIALIZE_LOG: List[Dict[str, Any]] = []  # one entry per deserialize call: DLA_core, accepted
_SESSIONS: Dict[str, Any] = {}  # ONNX Runtime sessions by ONNX path


class ILogger:
    """Base class of TensorRT loggers; subclasses implement :meth:`log`."""

    class Severity(enum.IntEnum):
        """Message severities, most severe first (values as in TensorRT)."""

        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    INTERNAL_ERROR: ClassVar['ILogger.Severity'] = Severity.INTERNAL_ERROR
    ERROR: ClassVar['ILogger.Severity'] = Severity.ERROR
    WARNING: ClassVar['ILogger.Severity'] = Severity.WARNING
    INFO: ClassVar['ILogger.Severity'] = Severity.INFO
    VERBOSE: ClassVar['ILogger.Severity'] = Severity.VERBOSE

    def __init__(self) -> None:
        """Create the logger (subclasses must call this, as with pybind11's trampoline)."""

    def log(self, severity: 'ILogger.Severity', msg: str) -> None:
        """Receive one message; the base class drops it."""


class Logger(ILogger):
    """TensorRT's ready-made logger: prints messages at or above ``min_severity`` to stderr."""

    min_severity: 'ILogger.Severity'

    def __init__(self, min_severity: 'ILogger.Severity' = ILogger.Severity.WARNING) -> None:
        """Create a logger printing messages up to ``min_severity``."""
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity: 'ILogger.Severity', msg: str) -> None:
        """Print the message if it is severe enough."""
        if severity <= self.min_severity:
            print(f'[fake TensorRT] {msg}', file=sys.stderr)


class TensorIOMode(enum.IntEnum):
    """Whether a tensor is an engine input or output."""

    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.IntEnum):
    """Tensor element types (values as in TensorRT)."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    INT64 = 8


class BuilderFlag(enum.IntEnum):
    """Builder flags of TensorRT 10 (TensorRT 11 removed FP16 and INT8)."""

    FP16 = 0
    INT8 = 1
    GPU_FALLBACK = 3


_NUMPY_TYPES: Dict[int, type] = {
    DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
    DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8,
    DataType.INT64: np.int64}


def nptype(trt_type: DataType) -> type:
    """Return the NumPy type of a TensorRT data type."""
    return _NUMPY_TYPES[int(trt_type)]


def _view(address: int, shape: Sequence[int], dtype: type) -> np.ndarray:
    """Return a writable array over raw memory, as TensorRT reads and writes device pointers."""
    count = int(np.prod(shape))
    raw = ctypes.cast(address, ctypes.POINTER(ctypes.c_uint8))
    return np.ctypeslib.as_array(raw, shape=(count * np.dtype(dtype).itemsize,)).view(
        dtype).reshape(tuple(shape))


class IExecutionContext:
    """Runs a fake plan: ONNX Runtime on the ONNX file it names, or its constant rows."""

    def __init__(self, engine: 'ICudaEngine') -> None:
        """Create a context for ``engine`` (use :meth:`ICudaEngine.create_execution_context`)."""
        self._engine = engine
        self._shapes: Dict[str, Tuple[int, ...]] = {
            t['name']: tuple(t['shape']) for t in engine._plan['inputs'] + engine._plan['outputs']}
        self._addresses: Dict[str, int] = {}

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        """Set a dynamic input's shape (within the profile); outputs follow its batch size."""
        low, _, high = self._engine.get_tensor_profile_shape(name, 0)
        if len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high)):
            self._engine._logger.log(ILogger.ERROR, f'{name}: shape {tuple(shape)} outside the '
                                     f'profile {low}..{high}')
            return False
        self._shapes[name] = tuple(int(s) for s in shape)
        for out in self._engine._plan['outputs']:
            self._shapes[out['name']] = (int(shape[0]),) + tuple(out['shape'][1:])
        return True

    def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
        """Return a tensor's shape in this context (dynamic inputs as set)."""
        return self._shapes[name]

    def set_tensor_address(self, name: str, memory: int) -> bool:
        """Bind a tensor to memory at ``memory`` (an integer address)."""
        if name not in self._shapes:
            return False
        self._addresses[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        """Run the plan on the bound memory; False (with a logged error) when it cannot."""
        plan = self._engine._plan
        missing = [n for n in self._shapes if not self._addresses.get(n)]
        if missing or not isinstance(stream_handle, int):
            self._engine._logger.log(ILogger.ERROR, f'no address set for {missing}')
            return False
        if any(d < 0 for shape in self._shapes.values() for d in shape):
            self._engine._logger.log(ILogger.ERROR, 'dynamic input shape not set')
            return False
        inputs = {t['name']: _view(self._addresses[t['name']], self._shapes[t['name']],
                                   nptype(DataType[t['dtype']])) for t in plan['inputs']}
        outputs = {t['name']: _view(self._addresses[t['name']], self._shapes[t['name']],
                                    nptype(DataType[t['dtype']])) for t in plan['outputs']}
        if plan.get('onnx'):
            session = _SESSIONS.get(plan['onnx'])
            if session is None:
                import onnxruntime
                session = onnxruntime.InferenceSession(plan['onnx'],
                                                       providers=['CPUExecutionProvider'])
                _SESSIONS[plan['onnx']] = session
            feed = {name: np.ascontiguousarray(value, np.float32)
                    for name, value in inputs.items()}
            for name, value in zip(outputs, session.run(list(outputs), feed)):
                outputs[name][...] = value
        else:
            for array in outputs.values():
                array[...] = 0
                rows = np.asarray(plan.get('rows', []), array.dtype)
                if rows.size:
                    array[:, :len(rows)] = rows
        return True


class ICudaEngine:
    """A deserialized fake plan with TensorRT 10's name-based I/O API."""

    def __init__(self, plan: Dict[str, Any], logger: ILogger) -> None:
        """Wrap a parsed plan (use :meth:`Runtime.deserialize_cuda_engine`)."""
        self._plan = plan
        self._logger = logger
        self._tensors = {t['name']: (TensorIOMode.INPUT, t) for t in plan['inputs']}
        self._tensors.update({t['name']: (TensorIOMode.OUTPUT, t) for t in plan['outputs']})

    @property
    def num_io_tensors(self) -> int:
        """Return the number of inputs plus outputs."""
        return len(self._tensors)

    def get_tensor_name(self, index: int) -> str:
        """Return the name of the I/O tensor at ``index`` (inputs first, as built)."""
        return list(self._tensors)[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        """Return whether ``name`` is an input or an output."""
        return self._tensors[name][0] if name in self._tensors else TensorIOMode.NONE

    def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
        """Return the built shape of ``name`` (-1 for dynamic dimensions)."""
        return tuple(self._tensors[name][1]['shape'])

    def get_tensor_dtype(self, name: str) -> DataType:
        """Return the element type of ``name``."""
        return DataType[self._tensors[name][1]['dtype']]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> List[Tuple[int, ...]]:
        """Return ``[min, opt, max]`` of a dynamic input in optimization profile 0."""
        profile = self._tensors[name][1].get('profile')
        if profile is None or profile_index != 0:
            shape = self.get_tensor_shape(name)
            return [shape, shape, shape]
        return [tuple(p) for p in profile]

    def create_execution_context(self) -> IExecutionContext:
        """Return a new execution context."""
        return IExecutionContext(self)


class Runtime:
    """Deserializes fake plans, checking version and DLA core as TensorRT does."""

    DLA_core: int

    def __init__(self, logger: ILogger) -> None:
        """Create a runtime reporting through ``logger``."""
        self._logger = logger
        self.DLA_core = -1

    @property
    def num_DLA_cores(self) -> int:
        """Return the number of DLA cores (``_NUM_DLA_CORES``)."""
        return _NUM_DLA_CORES

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> Optional[ICudaEngine]:
        """Return the engine, or None (after logging why) for a plan this runtime cannot use."""
        entry: Dict[str, Any] = {'DLA_core': self.DLA_core, 'accepted': False}
        _DESERIALIZE_LOG.append(entry)
        data = bytes(serialized_engine)
        error = ILogger.ERROR
        if not data.startswith(_PLAN_MAGIC):
            self._logger.log(error, 'Serialization assertion magicTagRead == kMAGIC_TAG failed.'
                             'Magic Tag does not match')
            self._logger.log(error, 'Engine deserialization failed.')
            return None
        try:
            plan = json.loads(data[len(_PLAN_MAGIC):].decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            self._logger.log(error, 'Serialization assertion size == expected failed: the plan is '
                             'truncated')
            self._logger.log(error, 'Engine deserialization failed.')
            return None
        if plan['tensorrt'] != __version__:
            self._logger.log(error, 'The engine plan file is not compatible with this version of '
                             f'TensorRT, expecting library version {__version__} got '
                             f"{plan['tensorrt']}, please rebuild.")
            self._logger.log(error, 'Engine deserialization failed.')
            return None
        if plan.get('dla_core') is not None and plan['dla_core'] != self.DLA_core:
            self._logger.log(error, f"the plan was built for DLA core {plan['dla_core']}, the "
                             f'runtime uses DLA core {self.DLA_core}')
            return None
        entry['accepted'] = True
        return ICudaEngine(plan, self._logger)


def _make_plan(inputs: Sequence[Dict[str, Any]], outputs: Sequence[Dict[str, Any]],
               onnx: Optional[str] = None, rows: Optional[Sequence[Sequence[float]]] = None,
               dla_core: Optional[int] = None, version: Optional[str] = None) -> bytes:
    """
    Return fake plan bytes (test control, not TensorRT API).

    ``inputs``/``outputs``: dicts with ``name``, ``shape``, ``dtype`` (a :class:`DataType` name)
    and, for dynamic inputs, ``profile`` ``[min, opt, max]``.
    """
    plan = {'tensorrt': version or __version__, 'dla_core': dla_core, 'inputs': list(inputs),
            'outputs': list(outputs), 'onnx': onnx, 'rows': [list(r) for r in rows or []]}
    return _PLAN_MAGIC + json.dumps(plan).encode('utf-8')
