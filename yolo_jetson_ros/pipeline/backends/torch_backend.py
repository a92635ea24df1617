# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""PyTorch backend: Ultralytics .pt weights on the CPU or a CUDA device."""

from pathlib import Path

import numpy as np

from .base import Backend, BackendError, ModelInfo


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
                 imgsz: int = 640, batch: int = 1):
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
            model, _ckpt = load_checkpoint(str(weights), device=self._device, fuse=True)
        except Exception as exc:  # unpickling errors come in many types
            raise BackendError(f"cannot load PyTorch weights '{weights}': {exc}") from exc
        if half:
            model = model.half()
        self.model = model.eval()
        head = model.model[-1]
        self.info = ModelInfo(names={int(k): str(v) for k, v in dict(model.names).items()},
                              input_hw=(imgsz, imgsz), batch=batch,
                              stride=int(max(model.stride)),
                              end2end=bool(getattr(head, 'end2end', False)),
                              task=str(getattr(model, 'task', 'detect')))
        self._dtype = torch.float16 if half else torch.float32
        self._input = torch.zeros((batch, 3, imgsz, imgsz), dtype=self._dtype, device=self._device)
        self.device = device
        self.precision = 'fp16' if half else 'fp32'

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Copy ``batch`` into the preallocated device input, run the model, return NumPy."""
        torch = self._torch
        with torch.inference_mode():
            self._input.copy_(torch.from_numpy(batch), non_blocking=False)
            out = self.model(self._input)
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.float().cpu().numpy()

    def close(self) -> None:
        """Free the model and the device cache."""
        self.model = None
        self._input = None
        if self._device.type == 'cuda':
            self._torch.cuda.empty_cache()
