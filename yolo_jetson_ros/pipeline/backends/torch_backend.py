# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
PyTorch backend: Ultralytics .pt weights on the CPU or a CUDA device.

On CUDA the backend also offers the fused GPU path (:meth:`TorchBackend.detect_images`, see
:mod:`yolo_jetson_ros.pipeline.gpu_pipeline`): upload once, letterbox, fp16 inference and NMS on
the GPU, replayed as a CUDA graph. On the CPU the detector keeps its NumPy pre/post-processing.
"""

import contextlib
import gc
import os
from pathlib import Path
from typing import Optional, TYPE_CHECKING

import numpy as np

from .base import Backend, BackendError, ModelInfo

if TYPE_CHECKING:
    import torch


def cuda_available() -> bool:
    """Return True when torch is importable and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class TorchBackend(Backend):
    """Runs the fused PyTorch model; fp16 on CUDA when ``half``."""

    name = 'torch'

    def __init__(self, weights: Path, device: str = 'cpu', half: bool = False,
                 imgsz: int = 640, batch: int = 1, cuda_graph: Optional[bool] = None,
                 nms_free: bool = False, compile_postprocess: bool = False):
        super().__init__()
        try:
            import torch
            from ultralytics.nn.tasks import load_checkpoint
        except ImportError as exc:
            raise BackendError('the torch backend needs torch and ultralytics installed') from exc
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise BackendError(f'device {device} asked for, but torch sees no CUDA device')
        if half and not device.startswith('cuda'):
            raise BackendError('fp16 needs a CUDA device; use precision fp32 on the CPU')
        self._torch = torch
        self._device = torch.device(device)
        try:
            # Loaded, fused and cast on the CPU, then moved: only the final weights ever occupy
            # device memory (fusing on the device held three copies at once, +20 MB for YOLO11n)
            model, _ckpt = load_checkpoint(str(weights), device='cpu', fuse=False)
            # Ultralytics' predict() default is the dense head + NMS for every model; the
            # NMS-free one-to-one head (YOLO26, YOLOv10) only on request. Chosen before fusing.
            if hasattr(model, 'end2end'):
                model.end2end = bool(nms_free and model.end2end)
            model = model.fuse()
        except Exception as exc:  # unpickling errors come in many types
            raise BackendError(f"cannot load PyTorch weights '{weights}': {exc}") from exc
        if half:
            model = model.half()
        model = model.eval()
        head = model.model[-1]
        self.info = ModelInfo(names={int(k): str(v) for k, v in dict(model.names).items()},
                              input_hw=(imgsz, imgsz), batch=batch,
                              stride=int(max(model.stride)),
                              end2end=bool(getattr(head, 'end2end', False)),
                              task=str(getattr(model, 'task', 'detect')))
        self._dtype = torch.float16 if half else torch.float32
        self._input: Optional['torch.Tensor'] = None  # infer()'s input, made on first use
        self._input_shape = (batch, 3, imgsz, imgsz)
        self.device = device
        self.precision = 'fp16' if half else 'fp32'
        self.has_fused_path = self._device.type == 'cuda'
        if self.has_fused_path:
            from ..gpu_pipeline import GpuPipeline
            if cuda_graph is None:
                cuda_graph = os.environ.get('YOLO_JETSON_ROS_CUDA_GRAPH', '1') != '0'
            self.pipeline = GpuPipeline(self.forward, self.info.input_hw, batch, self._device,
                                        self._dtype, self.info.end2end, self.info.num_classes,
                                        use_graph=cuda_graph,
                                        compile_postprocess=compile_postprocess)
            with self.pipeline.persistent():  # the weights share the graphs' segments
                self.model = model.to(self._device)
        else:
            self.model = model.to(self._device)

    def forward(self, tensor: 'torch.Tensor') -> 'torch.Tensor':
        """Run the model on a device tensor (B, 3, H, W) of its dtype; return the raw output."""
        out = self.model(tensor)
        return out[0] if isinstance(out, (list, tuple)) else out

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """
        Copy ``batch`` into the preallocated device input, run the model, return NumPy.

        With the fused path, on its stream: an eager forward on another stream made every CUDA
        graph of the process slower for good on a lent H100 (the fused graph 1.22 -> 1.39 ms).
        """
        torch = self._torch
        on_stream = (self.pipeline.on_stream() if self.pipeline is not None
                     else contextlib.nullcontext())
        with torch.inference_mode(), on_stream:
            if self._input is None:  # not on the fused path: it has its own input
                self._input = torch.zeros(self._input_shape, dtype=self._dtype,
                                          device=self._device)
            self._input.copy_(torch.from_numpy(batch), non_blocking=False)
            out = self.model(self._input)
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.float().cpu().numpy()

    def close(self) -> None:
        """Free the model and the device cache."""
        self.model = None
        self._input = None
        # The weights live in the pipeline's memory pool, which gives its segments back when it
        # is destroyed only if nothing in it is still allocated: free them first, reference
        # cycles included (a loaded, fused model was seen to need the cycle collector)
        gc.collect()
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None
        if self._device.type == 'cuda':
            self._torch.cuda.empty_cache()
