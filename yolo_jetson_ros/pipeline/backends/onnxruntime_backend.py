# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""ONNX Runtime backend: the CPU fallback (CUDA execution provider when one is installed)."""

import ast
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from .base import Backend, BackendError, ModelInfo


def model_info_from_onnx_metadata(meta: Dict[str, str], input_shape: list) -> ModelInfo:
    """Build :class:`ModelInfo` from the metadata Ultralytics writes into its ONNX exports."""
    try:
        names = {int(k): str(v) for k, v in ast.literal_eval(meta['names']).items()}
    except (KeyError, ValueError, SyntaxError):
        raise BackendError(
            'the ONNX file has no Ultralytics metadata (class names); export it '
            'with Ultralytics or give the .pt weights'
        ) from None
    h, w = int(input_shape[2]), int(input_shape[3])
    return ModelInfo(
        names=names,
        input_hw=(h, w),
        batch=int(input_shape[0]),
        stride=int(meta.get('stride', 32)),
        end2end=str(meta.get('end2end', 'False')) == 'True',
        task=str(meta.get('task', 'detect')),
    )


class OnnxRuntimeBackend(Backend):
    """Runs an Ultralytics ONNX export with ONNX Runtime, writing into a preallocated output."""

    name = 'onnxruntime'

    def __init__(self, onnx_path: Path, device: str = 'cpu', threads: int = 0):
        super().__init__()
        self.path = Path(onnx_path)  # the export this session runs
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError('onnxruntime is not installed: pip install onnxruntime') from exc
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
        providers: list = ['CPUExecutionProvider']
        if device.startswith('cuda'):
            if 'CUDAExecutionProvider' not in ort.get_available_providers():
                raise BackendError(
                    f'device {device} asked for, but this onnxruntime has no CUDA '
                    'provider (pip install onnxruntime-gpu), or use device cpu'
                )
            index = int(device.split(':')[1]) if ':' in device else 0
            providers = [('CUDAExecutionProvider', {'device_id': index}), 'CPUExecutionProvider']
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise BackendError(f"cannot load ONNX model '{onnx_path}': {exc}") from exc
        inp = self.session.get_inputs()[0]
        if any(not isinstance(d, int) for d in inp.shape):
            raise BackendError(
                f'ONNX input {inp.name} has dynamic shape {inp.shape}; export with '
                'dynamic=False (fixed batch and image size)'
            )
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = model_info_from_onnx_metadata(meta, inp.shape)
        out = self.session.get_outputs()[0]
        self._input_name = inp.name
        self._output_name = out.name
        self._output: Optional[np.ndarray] = None
        if all(isinstance(d, int) for d in out.shape):
            self._output = np.empty(out.shape, np.float32)
        self._binding = self.session.io_binding()
        self.device = device
        self.precision = 'fp32'

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch; the returned array is reused by the next call."""
        if self._output is None:
            return self.session.run([self._output_name], {self._input_name: batch})[0]
        self._binding.bind_cpu_input(self._input_name, batch)
        self._binding.bind_output(
            self._output_name, 'cpu', 0, np.float32, self._output.shape, self._output.ctypes.data
        )
        self.session.run_with_iobinding(self._binding)
        return self._output

    def close(self) -> None:
        """Drop the session."""
        self.session = None
        self._binding = None
