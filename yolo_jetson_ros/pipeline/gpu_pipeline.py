# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Fused pre/post-processing in PyTorch: letterbox, inference and NMS on the device.

Used by every backend that holds its model on a CUDA device (torch, TensorRT): the backend only
supplies ``forward(input_tensor) -> output_tensor``. Per frame:

* each uint8 HxWx3 image is copied once into a pinned staging buffer, by one thread, and sent to
  the device with a non-blocking copy. torch's multi-threaded copy stages faster when frames
  come back to back (0.06-0.11 against 0.17-0.22 ms on a lent H100's 16-core host), but its
  OpenMP threads keep spinning after each copy, and the node pays for that: image published ->
  detections received took 0.01-0.28 ms longer with it in three A/B rounds there, and 0.34-0.57
  ms longer than with torch held to one thread in two more. On a robot those spinning threads
  would also take CPU from the other nodes;
* letterbox (:class:`LetterboxGeometry` placement, bilinear resize with cv2.INTER_LINEAR's
  half-pixel sampling), BGR->RGB, /255 and HWC->CHW write into one preallocated input;
* the model runs (fp16 or fp32, whatever ``forward`` does);
* decoding and NMS run on the device with Ultralytics' semantics (conf, iou, classes, agnostic,
  max_det; end-to-end ``(B, K, 6)`` outputs are only thresholded), and the boxes are mapped to
  source pixels there (``scale_boxes``: unpad, unscale, clip);
* one small device-to-host copy of the final rows, one synchronisation.

On CUDA, letterbox and decode + NMS run as three kernels compiled at configure by NVRTC
(:mod:`.cuda_kernels`: exact greedy NMS over the same slots, the same float32 arithmetic, so the
same bits as torch's kernels below); the torch code here is their reference, the CPU's path and
the fallback where NVRTC is missing. On a lent H100 (yolo11n fp16) they took the captured device
work from 1.156 to 1.030 ms against a bare forward of 1.01 ms.

After ``capture_after`` eager frames of the same source sizes, the whole device part (letterbox,
forward, decode, NMS) is captured in a CUDA graph and replayed. Fixed shapes need a fixed-size
NMS: the boxes that pass ``conf`` fill ``max_candidates`` slots in anchor order and are
suppressed with Cluster-NMS (Zheng et al., 2021) in score order, iterated a fixed number of
times; its fixed point equals greedy NMS, and a frame whose iterations did not converge, or that
had more passing boxes than slots, is redone on the exact eager path (torchvision NMS), so results
are always those of greedy NMS.

The same code runs on the CPU device (tests use that); there is no pinned memory or graph then.
"""

import contextlib
import ctypes
from dataclasses import dataclass
import os
import threading
import time
from typing import (Any, Callable, ContextManager, Dict, Iterator, List, MutableMapping, Optional,
                    Sequence, Tuple)

import numpy as np
import torch

from .cuda_kernels import KernelError, load_kernels, PipelineKernels
from .postprocess import decode_end2end, MAX_NMS, MAX_WH, NmsSettings
from .preprocess import LetterboxGeometry, PAD_VALUE
from .resize_plan import resize_plan, ResizePlan

Forward = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------- preprocessing
def letterbox_into(dst: torch.Tensor, src: torch.Tensor, geometry: LetterboxGeometry,
                   plan: ResizePlan, bgr: bool, fill: bool = True) -> None:
    """
    Letterbox one HxWx3 uint8 device image into ``dst`` (3, H, W) as RGB in [0, 1].

    Bilinear resize in float32 (horizontal pass, then vertical, as OpenCV), rounded to uint8
    values like cv2.resize's output, then divided by 255 into ``dst``'s dtype (computed in
    float32 and rounded once, as Ultralytics divides its fp16 input); the border is the pad value
    114, written only with ``fill`` (the caller knows whether ``dst`` holds this geometry's
    border already). In-place arithmetic keeps the temporaries to two float32 images, which
    matters inside the CUDA graph's memory pool.
    """
    new_h, new_w = geometry.resized_hw
    region = dst[:, geometry.top:geometry.top + new_h, geometry.left:geometry.left + new_w]
    if plan.identity:
        img = src
    else:
        wx = plan.wx[None, :, None]
        cols = src.index_select(1, plan.x0).to(torch.float32).mul_(1.0 - wx)
        cols.add_(src.index_select(1, plan.x1).to(torch.float32).mul_(wx))
        wy = plan.wy[:, None, None]
        img = cols.index_select(0, plan.y0).mul_(1.0 - wy)
        img.add_(cols.index_select(0, plan.y1).mul_(wy)).round_()
    chw = img.permute(2, 0, 1)
    if bgr:
        chw = chw.flip(0)
    if fill:
        dst.fill_(PAD_VALUE / 255.0)
    torch.div(chw, 255.0, out=region)  # one kernel: convert, divide, write the strided region


# ---------------------------------------------------------------------------------- decoding
def xywh_to_xyxy(xywh: torch.Tensor) -> torch.Tensor:
    """Convert (..., 4) centre/size boxes to corners."""
    half = xywh[..., 2:4] / 2
    return torch.cat((xywh[..., :2] - half, xywh[..., :2] + half), dim=-1)


def source_map_rows(geometry: LetterboxGeometry) -> np.ndarray:
    """
    Return the (3, 4) float32 rows that map xyxy network boxes of ``geometry`` to its source.

    Offsets (left, top, left, top), gains (new_w / w0, new_h / h0, ...) and limits (w0, h0, ...):
    the float32 values :meth:`LetterboxGeometry.boxes_to_source` computes with.
    """
    h0, w0 = geometry.source_hw
    new_h, new_w = geometry.resized_hw
    gx, gy = new_w / w0, new_h / h0
    return np.array([[geometry.left, geometry.top] * 2, [gx, gy] * 2, [w0, h0] * 2], np.float32)


def map_to_source(boxes: torch.Tensor, source_map: torch.Tensor) -> torch.Tensor:
    """
    Map (B, K, 4) float32 xyxy boxes to source pixels with (B, 3, 4) :func:`source_map_rows`.

    The same float32 operations as :meth:`LetterboxGeometry.boxes_to_source` (clipped), so the
    results are identical.
    """
    offset, gain, limit = source_map[:, 0:1], source_map[:, 1:2], source_map[:, 2:3]
    return torch.clamp((boxes - offset).div_(gain), min=torch.zeros_like(limit), max=limit)


def exact_dense(pred: torch.Tensor, settings: NmsSettings) -> torch.Tensor:
    """
    Decode one image's dense output (4 + nc, A) with greedy NMS (torchvision), eagerly.

    Same semantics as :func:`yolo_jetson_ros.pipeline.postprocess.decode_dense` and
    ``ultralytics.utils.nms.non_max_suppression``; returns (N, 6) float32 on the device.
    """
    import torchvision
    pred = pred.float()
    scores_all = pred[4:]
    if settings.multi_label:
        cls_idx, anchors = torch.nonzero(scores_all > settings.conf, as_tuple=True)
        conf = scores_all[cls_idx, anchors]
    else:  # the best class over all classes, then the class filter (as Ultralytics)
        conf, cls_idx = scores_all.max(dim=0)
        anchors = torch.nonzero(conf > settings.conf, as_tuple=True)[0]
        conf, cls_idx = conf[anchors], cls_idx[anchors]
    allowed = settings.class_filter()
    if allowed is not None:
        mask = torch.isin(cls_idx, torch.as_tensor(allowed, device=pred.device))
        cls_idx, anchors, conf = cls_idx[mask], anchors[mask], conf[mask]
    if conf.numel() == 0:
        return torch.zeros((0, 6), dtype=torch.float32, device=pred.device)
    if conf.numel() > MAX_NMS:
        top = conf.argsort(descending=True)[:MAX_NMS]
        cls_idx, anchors, conf = cls_idx[top], anchors[top], conf[top]
    boxes = xywh_to_xyxy(pred[:4, anchors].T)
    offsets = 0.0 if settings.agnostic else cls_idx[:, None].float() * MAX_WH
    keep = torchvision.ops.nms(boxes + offsets, conf, settings.iou)[:settings.max_det]
    return torch.cat((boxes[keep], conf[keep, None], cls_idx[keep, None].float()), dim=1)


def exact_end2end(pred: torch.Tensor, settings: NmsSettings) -> torch.Tensor:
    """Filter one image's end-to-end output (K, 6) by score, class and max_det, eagerly."""
    pred = pred.float()
    mask = pred[:, 4] > settings.conf
    allowed = settings.class_filter()
    if allowed is not None:
        mask &= torch.isin(pred[:, 5].long(), torch.as_tensor(allowed, device=pred.device))
    return pred[mask][:settings.max_det]


@dataclass
class DeviceSettings:
    """Thresholds as device tensors, so a captured graph reads their current values."""

    conf: torch.Tensor
    iou: torch.Tensor
    class_weight: torch.Tensor  # (nc,) 1.0 allowed, 0.0 filtered out
    class_offset: torch.Tensor  # MAX_WH, or 0 for agnostic NMS


def upper_triangle(k: int, device: 'torch.device | str') -> torch.Tensor:
    """Return the (k, k) bool mask of pairs (i, j) with i < j: box i scores higher than j."""
    return torch.ones((k, k), dtype=torch.bool, device=device).triu_(diagonal=1)


@dataclass
class DecodeConstants:
    """
    The fixed-shape decode's constant tensors for one (batch, k, anchors), made once.

    Made outside any CUDA-graph capture; built per frame, each would be a kernel of its own.
    """

    upper: torch.Tensor  # (k, k) bool: upper_triangle
    slot_numbers: torch.Tensor  # (batch, k) int32: 1..k, the slots' 1-based ranks
    corner_rows: torch.Tensor  # (8, 1) int64: flat offsets of rows x, y, x, y, w, h, w, h
    corner_sign: torch.Tensor  # (4, 1) float32: -1/2, -1/2, 1/2, 1/2 (xywh -> xyxy)
    anchors: int

    @staticmethod
    def make(batch: int, k: int, anchors: int,
             device: 'torch.device | str') -> 'DecodeConstants':
        """Build the constants for ``batch`` images, ``k`` slots and ``anchors`` anchors."""
        slots = torch.arange(1, k + 1, dtype=torch.int32, device=device)
        rows = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3], dtype=torch.int64, device=device)
        return DecodeConstants(
            upper_triangle(k, device), slots.expand(batch, -1).contiguous(),
            (rows * anchors)[:, None],
            torch.tensor([-0.5, -0.5, 0.5, 0.5], dtype=torch.float32, device=device)[:, None],
            anchors)

    def fits(self, batch: int, k: int, anchors: int) -> bool:
        """Whether these constants serve ``batch`` (or fewer) images, ``k`` and ``anchors``."""
        return (self.slot_numbers.shape[0] >= batch and self.upper.shape[0] == k
                and self.anchors == anchors)


def fixed_dense_keep(pred: torch.Tensor, ds: DeviceSettings, k: int, iterations: int,
                     constants: Optional[DecodeConstants] = None,
                     source_map: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
    """
    Decode and NMS a dense batch (B, 4 + nc, A) with fixed shapes (CUDA-graph capturable).

    Returns ``rows`` (B, k, 6) of the first ``k`` anchors whose score passes ``conf``, in anchor
    order, ``keep`` (B, k) of 0/1 (the rows greedy NMS keeps, where converged), ``converged``
    (B,) bool and ``overflow`` (B,) bool (more than ``k`` boxes passed ``conf``, so some are
    missing). Where converged and not overflowed, the kept rows are exactly greedy NMS's (in
    score order once sorted by score, ties by anchor: :func:`unpack_dense`); callers redo other
    images with :func:`exact_dense`. ``constants`` are :meth:`DecodeConstants.make`'s, if
    precomputed. With ``source_map`` (B, 3, 4) the rows' boxes are in source pixels
    (:func:`map_to_source`), else in network-input pixels.

    Every operation here is a kernel of its own (unless compiled), and each costs a few
    microseconds in a CUDA graph however small, so the code counts them.
    """
    if iterations < 1:
        raise ValueError('Cluster-NMS needs at least one iteration')
    batch, anchors = pred.shape[0], pred.shape[2]
    c = constants
    if c is None or not c.fits(batch, k, anchors):
        c = DecodeConstants.make(batch, k, anchors, pred.device)
    # the max of fp16 scores is exact: only the (B, A) maxima and k boxes become float32
    best, cls_idx = pred[:, 4:].max(dim=1)  # (B, A): best class over all, then the filter
    # x 1.0 or 0.0 (filtered class) in float32: the score exactly, or one that never passes
    score = best * ds.class_weight[cls_idx]
    passed = score > ds.conf
    # The passing anchors go to slots 0..k-1 in anchor order: slot j takes the first anchor
    # whose prefix count of passing anchors reaches j + 1 (one binary search per slot). A sorted
    # top-k of all A scores took 70 us of a 1.22 ms frame on a lent H100 (yolo11n fp16,
    # A = 8400); a scatter of every anchor took seven kernels. Unfilled slots read the last
    # anchor and are invalid.
    rank = passed.cumsum(dim=1, dtype=torch.int32)  # (B, A), nondecreasing
    slot_numbers = c.slot_numbers[:batch]
    index = torch.searchsorted(rank, slot_numbers).clamp_(max=anchors - 1)  # (B, k) anchors
    n_valid = rank[:, -1:]
    valid = slot_numbers <= n_valid  # (B, k)
    top_scores = score.gather(1, index)
    # x, y, x, y, w, h, w, h of the k anchors in one gather, then the corners x -+ w / 2 in
    # float32 in one kernel (w * -0.5 is exact: the same values as x - w / 2)
    corners = pred.reshape(batch, -1).gather(
        1, (c.corner_rows + index[:, None, :]).view(batch, -1)).view(batch, 8, k)
    boxes = torch.addcmul(corners[:, :4], corners[:, 4:], c.corner_sign).transpose(1, 2)
    cls_k = cls_idx.gather(1, index).float()
    shifted = torch.addcmul(boxes, cls_k[..., None], ds.class_offset)  # + class * MAX_WH
    area = (shifted[..., 2] - shifted[..., 0]) * (shifted[..., 3] - shifted[..., 1])
    lt = torch.maximum(shifted[:, :, None, :2], shifted[:, None, :, :2])
    rb = torch.minimum(shifted[:, :, None, 2:], shifted[:, None, :, 2:])
    inter = (rb - lt).clamp_(min=0).prod(dim=-1)
    iou = inter / (area[:, :, None] + area[:, None, :] - inter)
    # before[b, i, j]: greedy NMS visits i before j (higher score; equal scores in anchor order,
    # as the host's stable sort). A kept i removes a j it overlaps. Invalid slots need no
    # masking: they start and stay unkept (keep <= valid), so they neither suppress nor survive.
    s_i, s_j = top_scores[:, :, None], top_scores[:, None, :]
    before = (s_i > s_j) | ((s_i == s_j) & c.upper)
    # the GEMM in the model's own precision on CUDA, whose kernels the model has loaded already:
    # an fp16 GEMM beside an fp32 model loaded a second cuBLAS kernel family (+116 MB peak RSS
    # on a lent H100). The 0/1 operands and integer sums <= k are exact in fp16 and fp32.
    mm_dtype = torch.float16 if pred.is_cuda and pred.dtype == torch.float16 else torch.float32
    suppress = ((iou > ds.iou) & before).to(mm_dtype)
    valid_f = valid.to(mm_dtype)[:, None, :]  # (B, 1, k) of 0/1
    keep_f = previous_f = valid_f
    for _ in range(iterations):
        # keep j iff valid and no kept box suppresses it: clamp(valid - keep @ suppress, 0),
        # two kernels per iteration (one fused GEMM with beta = 1, alpha = -1, and the clamp)
        previous_f = keep_f
        keep_f = torch.baddbmm(valid_f, keep_f, suppress, alpha=-1).clamp_(min=0)
    converged = (keep_f == previous_f).all(dim=2)[:, 0]
    out_boxes = boxes if source_map is None else map_to_source(boxes, source_map)
    rows = torch.cat((out_boxes, top_scores[..., None], cls_k[..., None]), dim=2)
    return rows, keep_f[:, 0], converged, n_valid[:, 0] > k


def pack_dense(pred: torch.Tensor, ds: DeviceSettings, k: int, iterations: int,
               constants: Optional[DecodeConstants] = None,
               source_map: Optional[torch.Tensor] = None) -> torch.Tensor:
    """
    Run :func:`fixed_dense_keep` and pack its results into one (B, 7k + 2) float32 tensor.

    Per image: the k candidate rows (6k), their keep flags (k), converged, overflow; one
    device-to-host copy brings a frame's results back, and :func:`unpack_dense` reads them
    (choosing and sorting the few kept rows on the host is cheaper than a sort on the device).
    """
    rows, keep, converged, overflow = fixed_dense_keep(pred, ds, k, iterations, constants,
                                                       source_map)
    # one cat, promoting the fp16 keep flags and the bools to float32 as it copies
    return torch.cat((rows.flatten(1), keep, converged[:, None], overflow[:, None]), dim=1)


def unpack_dense(packed: np.ndarray) -> Tuple[np.ndarray, bool, bool]:
    """
    Return one image's ``(kept rows in score order, converged, overflow)`` from pack_dense.

    Rows of equal score stay in anchor order (a stable sort), the order greedy NMS visited them.
    """
    k = (packed.shape[0] - 2) // 7
    kept = packed[:6 * k].reshape(k, 6)[packed[6 * k:7 * k] > 0.5]
    kept = kept[np.argsort(-kept[:, 4], kind='stable')]
    return kept, bool(packed[-2] > 0.5), bool(packed[-1] > 0.5)


# ---------------------------------------------------------------------------------- the pipeline
# torch gives each (thread, stream) a cuBLAS workspace at its first matrix product: 32 MiB on
# Hopper (and Blackwell in recent torch), 8 MiB (':4096:2:16:8') elsewhere, Jetson Orin included.
# This pipeline's products are small (the model's attention over 400 positions at imgsz 640, the
# NMS's 256x256 suppression), and 8 x 16 KiB serve them. On a lent H100 the default also cost 64
# MB outside torch's allocator: yolo11n fp16 took 146 MB of device memory with it, 50 without,
# at the same latency. ':16:8' is one of the two values torch's deterministic mode accepts.
# cuBLASLt's workspace (KiB) must not exceed it, or torch warns. torch reads both once, at the
# process's first product.
CUBLAS_WORKSPACE = ':16:8'
CUBLASLT_WORKSPACE_KIB = '128'


def limit_cublas_workspace(environ: MutableMapping[str, str] = os.environ) -> bool:
    """
    Ask torch for small cuBLAS/cuBLASLt workspaces unless the user chose one; return if it did.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (:data:`CUBLAS_WORKSPACE`) and ``CUBLASLT_WORKSPACE_SIZE``
    (:data:`CUBLASLT_WORKSPACE_KIB`). A ``CUBLAS_WORKSPACE_CONFIG`` the user set (torch's own
    default on Hopper is ``:4096:8``) leaves both alone. After the process's first cuBLAS call
    the variables no longer change anything.
    """
    if 'CUBLAS_WORKSPACE_CONFIG' in environ:
        return False
    environ['CUBLAS_WORKSPACE_CONFIG'] = CUBLAS_WORKSPACE
    environ.setdefault('CUBLASLT_WORKSPACE_SIZE', CUBLASLT_WORKSPACE_KIB)
    return True


def compile_pack_dense() -> Tuple[Optional[Callable[..., torch.Tensor]], str]:
    """
    Return ``(pack_dense compiled by torch.compile, '')``, or ``(None, why not)``.

    Inductor fuses the many small kernels of the decode and NMS into a few Triton kernels: on a
    lent H100 (yolo11n fp16, k 256) the captured post-processing took 69 instead of 154 us, with
    identical detections on the 128 coco128 images. The default :mod:`.cuda_kernels` do better
    (the whole captured device work 1.030 against 1.064 ms there), so this serves GPUs without
    NVRTC. Measured costs there: 8-17 s more at the
    first configure (once per process and shape; a warm inductor cache shortens it), 40-200 MB
    more resident memory and 0-80 MB more device memory (the Python side of torch.compile and
    Triton, and the compiled kernels). Box coordinates can differ from the plain kernels' in
    their last bit (Triton's float32 division is not correctly rounded). The compilation itself
    runs at the first call. Inductor compiles in this process (``compile_threads`` 1) unless
    ``TORCHINDUCTOR_COMPILE_THREADS`` says otherwise: its default pool of worker processes would
    stay alive beside the node.
    """
    if not hasattr(torch, 'compile'):
        return None, f'torch {torch.__version__} has no torch.compile'
    try:
        import triton  # noqa: F401  (inductor's code generator for CUDA)
        import torch._inductor.config as inductor_config
    except ImportError as exc:
        return None, f'Triton is not importable ({exc})'
    if 'TORCHINDUCTOR_COMPILE_THREADS' not in os.environ:
        inductor_config.compile_threads = 1
    return torch.compile(pack_dense, fullgraph=True, dynamic=False), ''


# the bindings torch.cuda.set_stream and current_stream call, looked up once (None: absent)
_GET_CURRENT_STREAM = getattr(torch._C, '_cuda_getCurrentStream', None)
_SET_STREAM = getattr(torch._C, '_cuda_setStream', None)


class StreamSwitch:
    """
    Make ``stream`` current for a ``with`` block, as ``torch.cuda.stream(stream)`` does, cheaply.

    ``torch.cuda.stream`` builds Python ``Stream`` objects for the streams it saves and restores:
    entering and leaving it took 39 us of a 1.38 ms frame on a lent H100's host (30 + 9, timed
    inside the frame; 11.6 us in a loop doing nothing else), and a frame enters it once. This
    saves and restores the (id, device, type) triples through the same torch bindings that
    ``torch.cuda.set_stream`` calls, for the current device and the stream's own if they differ,
    and falls back to ``torch.cuda.stream`` where this torch lacks them.
    """

    __slots__ = ('_stream', '_target', '_saved', '_fallback')

    def __init__(self, stream: 'torch.cuda.Stream') -> None:
        self._stream = stream
        self._target = (stream.stream_id, stream.device_index, stream.device_type)
        self._saved: List[Tuple[int, int, int]] = []
        self._fallback: Optional[ContextManager] = None

    def __enter__(self) -> 'StreamSwitch':
        get = _GET_CURRENT_STREAM
        if get is None or _SET_STREAM is None:
            return self._enter_fallback()
        current = torch.cuda.current_device()
        saved = get(current)
        if not isinstance(saved, tuple):  # an older torch packed the triple into one integer
            return self._enter_fallback()
        # restored in reverse: the stream's device first, then the current device and stream
        # (setting a stream also makes its device current)
        saved_here = [saved]
        if current != self._target[1]:
            saved_here.append(tuple(get(self._target[1])))
        try:
            _SET_STREAM(*self._target)
        except TypeError:  # a binding of another signature: nothing was set
            return self._enter_fallback()
        self._saved = saved_here
        return self

    def _enter_fallback(self) -> 'StreamSwitch':
        self._fallback = torch.cuda.stream(self._stream)
        self._fallback.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fallback is not None:
            fallback, self._fallback = self._fallback, None
            fallback.__exit__(*exc)
            return
        if _SET_STREAM is not None:  # it is, wherever anything was saved
            for saved in reversed(self._saved):
                _SET_STREAM(*saved)
        self._saved = []


def new_mem_pool() -> Optional[Any]:
    """Return a new ``torch.cuda.MemPool``, or None where this torch lacks the API."""
    if not (hasattr(torch.cuda, 'MemPool') and hasattr(torch.cuda, 'use_mem_pool')):
        return None
    try:
        return torch.cuda.MemPool()
    except (RuntimeError, TypeError):
        return None


def private_stream(device: torch.device) -> 'torch.cuda.Stream':
    """
    Return a new CUDA stream of our own on ``device`` (pipelines use :func:`acquire_stream`).

    ``torch.cuda.Stream()`` draws from torch's stream pool, which creates dozens of streams on
    first use; one stream made with the CUDA runtime costs next to nothing. Falls back to the
    pool where the runtime call is not exposed.
    """
    try:
        handle = ctypes.c_void_p()
        with torch.cuda.device(device):
            err = torch.cuda.cudart().cudaStreamCreate(ctypes.addressof(handle))
        if int(getattr(err, 'value', err)) == 0 and handle.value:
            return torch.cuda.ExternalStream(handle.value, device=device)
    except (AttributeError, RuntimeError, TypeError):
        pass
    return torch.cuda.Stream(device)


# Streams of closed pipelines, per device index, for the next pipeline to take. With a stream
# created at each configure and destroyed at each cleanup, device memory grew by 32 MB per
# lifecycle cycle on a lent H100 (the size of torch's per-stream cuBLAS workspace on Hopper);
# reused, it stayed flat. There are only ever as many streams as pipelines open at once.
_idle_streams: Dict[int, List['torch.cuda.Stream']] = {}
_idle_lock = threading.Lock()


def _device_index(device: torch.device) -> int:
    return torch.cuda.current_device() if device.index is None else int(device.index)


def acquire_stream(device: torch.device) -> 'torch.cuda.Stream':
    """Return an idle stream a closed pipeline gave back, or a new one (:func:`private_stream`)."""
    with _idle_lock:
        idle = _idle_streams.get(_device_index(device))
        if idle:
            return idle.pop()
    return private_stream(device)


def release_stream(device: torch.device, stream: 'torch.cuda.Stream') -> None:
    """Give ``stream`` back for reuse, once the work queued on it is done."""
    stream.synchronize()
    with _idle_lock:
        _idle_streams.setdefault(_device_index(device), []).append(stream)


@dataclass
class _Slot:
    """The per-source-size buffers of one batch slot."""

    geometry: LetterboxGeometry
    plan: ResizePlan
    staging: torch.Tensor  # pinned on CUDA
    device_image: torch.Tensor


class GpuPipeline:
    """Letterbox, ``forward`` and NMS on ``device``, optionally replayed as a CUDA graph."""

    def __init__(self, forward: Forward, input_hw: Tuple[int, int], batch: int,
                 device: 'torch.device | str', dtype: torch.dtype, end2end: bool,
                 num_classes: int, use_graph: bool = True, capture_after: int = 2,
                 max_candidates: int = 256, nms_iterations: int = 8,
                 input_tensor: Optional[torch.Tensor] = None,
                 compile_postprocess: bool = False, cuda_kernels: bool = True):
        """
        Prepare the pipeline; ``forward`` maps the (batch, 3, H, W) input to the raw output.

        ``input_tensor`` (optional) is the buffer to letterbox into, e.g. a TensorRT engine's
        bound input, so no copy separates the two; by default the pipeline allocates one.
        ``compile_postprocess``: decode and NMS compiled by torch.compile
        (:func:`compile_pack_dense`) on CUDA, compiled at the first frame; where that cannot
        be, the plain kernels run and :attr:`postprocess_mode` says why. ``cuda_kernels``:
        letterbox and decode + NMS in the runtime-compiled kernels of :mod:`.cuda_kernels` on
        CUDA (bit-identical results, fewer launches), where NVRTC is there; torch's kernels
        otherwise, and for the decode when ``compile_postprocess`` applies.
        """
        self.forward = forward
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.batch = int(batch)
        self.device = torch.device(device)
        self.cuda = self.device.type == 'cuda'
        self.dtype = dtype
        self.end2end = end2end
        self.num_classes = int(num_classes)
        self.use_graph = bool(use_graph and self.cuda)
        self.capture_after = int(capture_after)
        self.iterations = int(nms_iterations)
        self.max_candidates = int(max_candidates)
        self._pack: Callable[..., torch.Tensor] = pack_dense
        self._pack_compiled = False  # whether _pack is compiled and has run once
        self.postprocess_mode = 'eager'
        # letterbox and decode + NMS as three runtime-compiled kernels (cuda_kernels), where
        # NVRTC is there: compiled here, at configure
        self.kernels: Optional[PipelineKernels] = None
        if self.cuda and cuda_kernels:
            self.kernels, why_not = load_kernels(self.device, self.max_candidates)
            self.postprocess_mode = (f'cuda kernels ({self.kernels.kind})' if self.kernels
                                     else f'eager (no cuda kernels: {why_not})')
        if compile_postprocess and not self.cuda:
            self.postprocess_mode = 'eager (compile_postprocess is for CUDA devices)'
        elif compile_postprocess:
            compiled, why_not = compile_pack_dense()
            if compiled is None:
                self.postprocess_mode += f'; compile_postprocess: cannot compile: {why_not}'
            else:
                self._pack = compiled
                self.postprocess_mode = 'compiled'
        # One stream for everything, buffers, eager warm-up and capture included: cuBLAS keeps
        # a workspace per stream (32 MiB on Hopper), torch.cuda.graph() would otherwise capture
        # on a side stream of its own, and the caching allocator keeps separate memory segments
        # per stream (buffers made on another stream pinned a 20 MB segment of their own).
        self.stream: Optional[torch.cuda.Stream] = None
        if self.cuda:
            limit_cublas_workspace()
            self.stream = acquire_stream(self.device)
            self.stream.wait_stream(torch.cuda.current_stream(self.device))  # the model's copy
        self._graphs: Dict[tuple, Tuple[torch.cuda.CUDAGraph, tuple]] = {}
        # One private allocator pool holds what lives as long as the pipeline (input, thresholds,
        # box mapping; the model's weights through persistent()) and the graphs' activations,
        # so the graphs fill the free room of the segments those buffers occupy: a 1-10 MB
        # tensor otherwise pins a 20 MB segment of its own (H100, yolo11n: see the README)
        self._mempool = new_mem_pool() if self.use_graph else None
        self._pool: Optional[Any] = None  # a pool handle (its type differs across torch versions)
        if self.use_graph:
            self._pool = (self._mempool.id if self._mempool is not None
                          else torch.cuda.graph_pool_handle())
        shape = (self.batch, 3, *self.input_hw)
        with self.persistent():
            if input_tensor is None:
                self.input = torch.full(shape, PAD_VALUE / 255.0, dtype=dtype, device=self.device)
            else:
                if (tuple(input_tensor.shape) != shape or input_tensor.dtype != dtype
                        or input_tensor.device != self.device):
                    raise ValueError(f'input tensor {tuple(input_tensor.shape)} '
                                     f'{input_tensor.dtype} on {input_tensor.device} does not '
                                     f'fit {shape} {dtype} on {self.device}')
                self.input = input_tensor
                self.input.fill_(PAD_VALUE / 255.0)
            self.dsettings = DeviceSettings(
                conf=torch.zeros((), device=self.device), iou=torch.zeros((), device=self.device),
                class_weight=torch.ones(self.num_classes, device=self.device),
                class_offset=torch.full((), MAX_WH, device=self.device))
        self._slots: List[Dict[Tuple[int, int], _Slot]] = [{} for _ in range(self.batch)]
        # the geometry whose pad border each batch entry of the input holds: the border is
        # written when the geometry changes, not every frame
        self._bordered: List[Optional[LetterboxGeometry]] = [None] * self.batch
        # per batch entry, how its boxes map to source pixels (source_map_rows), on the device
        with self.persistent():
            self._source_map = torch.zeros((self.batch, 3, 4), dtype=torch.float32,
                                           device=self.device)
        self._settings_key: Optional[tuple] = None
        self._seen: Dict[tuple, int] = {}
        self._constants: Optional[DecodeConstants] = None
        self._host: Dict[tuple, List[torch.Tensor]] = {}
        self.raw: Optional[torch.Tensor] = None  # the last raw output (for exact redo)
        self.graph_replays = 0
        self.exact_redos = 0
        # (preprocess, inference, postprocess) ms of the last frame: staging + upload enqueue;
        # device work up to the synchronisation; host-side unpacking and scaling
        self.stage_ms: Tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._t_pre = 0.0

    def on_stream(self) -> ContextManager:
        """Make the pipeline's stream current (no-op on the CPU)."""
        if self.stream is None:
            return contextlib.nullcontext()
        return StreamSwitch(self.stream)

    @contextlib.contextmanager
    def persistent(self) -> Iterator[None]:
        """
        Allocate what must live as long as the pipeline: on its stream, in the graphs' pool.

        For buffers made before the first frame (the backend moves the model's weights to the
        device here). The graphs treat these blocks as taken, never as scratch; anything made
        here after a capture could be overwritten by a replay, so this refuses once captured.
        """
        if self._graphs:
            raise RuntimeError('persistent buffers must be allocated before any graph capture')
        with self.on_stream():
            if self._mempool is None:
                yield
            else:
                with torch.cuda.use_mem_pool(self._mempool, self.device):
                    yield

    # ------------------------------------------------------------------ buffers
    def _slot(self, index: int, source_hw: Tuple[int, int]) -> _Slot:
        slots = self._slots[index]
        slot = slots.get(source_hw)
        if slot is None:
            if len(slots) > 8:  # a camera changing resolution forever must not grow memory
                slots.clear()
                self._graphs.clear()
                self._seen.clear()
            g = LetterboxGeometry.compute(source_hw, self.input_hw)
            staging = torch.empty((*source_hw, 3), dtype=torch.uint8, pin_memory=self.cuda)
            device_image = staging
            if self.cuda:
                # in the graphs' pool while no graph exists (the usual case: a camera's first
                # frame), outside it after: a replay could overwrite a block taken after its
                # capture. Outside, a 1-10 MB image (720p, 1080p, the 640x640 warm-up image)
                # takes a 20 MB segment of its own; the warm-up's was freed again at once, so
                # the device held 20 MB more during configure than after (a lent H100)
                with self.persistent() if not self._graphs else contextlib.nullcontext():
                    device_image = torch.empty((*source_hw, 3), dtype=torch.uint8,
                                               device=self.device)
            slot = _Slot(g, resize_plan(source_hw, g.resized_hw, self.device), staging,
                         device_image)
            slots[source_hw] = slot
        return slot

    def _update_settings(self, settings: NmsSettings) -> None:
        allowed = settings.class_filter()
        key = (settings.conf, settings.iou, settings.agnostic,
               None if allowed is None else tuple(int(c) for c in allowed))
        if key == self._settings_key:
            return
        ds = self.dsettings
        ds.conf.fill_(float(settings.conf))
        ds.iou.fill_(float(settings.iou))
        ds.class_offset.fill_(0.0 if settings.agnostic else MAX_WH)
        weight = torch.ones(self.num_classes)
        if allowed is not None:
            weight.zero_()
            weight[torch.as_tensor(allowed[allowed < self.num_classes])] = 1.0
        ds.class_weight.copy_(weight)
        self._settings_key = key

    # ------------------------------------------------------------------ device work
    def _device_work(self, slots: Sequence[_Slot], bgr: Sequence[bool]) -> tuple:
        """Everything after the uploads: letterbox, forward, fixed-shape decode (graphable)."""
        for i, (slot, is_bgr) in enumerate(zip(slots, bgr)):
            self.letterbox(i, slot, is_bgr)
        raw = self.forward(self.input)
        if isinstance(raw, (list, tuple)):
            raw = raw[0]
        return (raw, self.decode(raw, len(slots)))

    def _device_work_or_fallback(self, slots: Sequence[_Slot], bgr: Sequence[bool]) -> tuple:
        """
        :meth:`_device_work` for an eager frame; a cuda kernel that fails turns them off.

        The first eager frames run at configure, so a kernel the driver refuses (resources,
        architecture) costs the speed-up, not the node; the frame is redone on torch's kernels.
        """
        try:
            return self._device_work(slots, bgr)
        except KernelError as exc:
            if self.kernels is None:
                raise
            self.kernels = None
            self.postprocess_mode = f'eager (cuda kernels failed: {exc})'[:300]
            return self._device_work(slots, bgr)

    def letterbox(self, index: int, slot: _Slot, bgr: bool) -> None:
        """Letterbox ``slot``'s uploaded image into batch entry ``index`` of the input."""
        if self.kernels is not None:
            g = slot.geometry
            self.kernels.letterbox(self.input[index], slot.device_image, slot.plan, g.top,
                                   g.left, g.resized_hw, bgr)
        else:
            letterbox_into(self.input[index], slot.device_image, slot.geometry, slot.plan, bgr,
                           fill=False)

    def decode(self, raw: torch.Tensor, n: int) -> torch.Tensor:
        """
        Decode the raw output's first ``n`` images with fixed shapes (graphable).

        Dense outputs give :func:`pack_dense`'s layout (the cuda kernels', compiled or torch's
        kernels), end-to-end ones their (n, K, 6) rows; boxes in source pixels either way.
        """
        source_map = self._source_map[:n]
        if self.end2end:  # (B, K, 6): the boxes to source pixels, scores and classes as they are
            rows = raw[:n].float()
            return torch.cat((map_to_source(rows[..., :4], source_map), rows[..., 4:]), dim=2)
        k = min(self.max_candidates, int(raw.shape[-1]))
        if (self.kernels is not None and self._pack is pack_dense and k == self.kernels.slots
                and int(raw.shape[1]) - 4 == self.num_classes):
            ds = self.dsettings
            return self.kernels.decode_nms(raw[:n], ds.conf, ds.iou, ds.class_weight,
                                           ds.class_offset, source_map)
        if self._constants is None or not self._constants.fits(self.batch, k, raw.shape[-1]):
            # made eagerly, before any capture, for the whole batch
            self._constants = DecodeConstants.make(self.batch, k, int(raw.shape[-1]),
                                                   self.device)
        if self._pack is not pack_dense:  # compiled for one shape: the whole batch, always,
            # so that fewer images than slots never recompile (seconds) in the frame path
            return self._run_pack(raw, k, self._source_map)[:n]
        return self._run_pack(raw[:n], k, source_map)

    def _run_pack(self, raw: torch.Tensor, k: int, source_map: torch.Tensor) -> torch.Tensor:
        """:func:`pack_dense`, compiled where asked; a compilation that fails falls back."""
        args = (raw, self.dsettings, k, self.iterations, self._constants, source_map)
        if self._pack is pack_dense or self._pack_compiled:
            return self._pack(*args)
        if self.cuda and torch.cuda.is_current_stream_capturing():
            return pack_dense(*args)  # no compiling in a capture (capture_after=0)
        try:  # the first call compiles (an eager frame, before any capture)
            out = self._pack(*args)
        except Exception as exc:  # inductor and Triton fail in many ways; the plain path works
            self._pack = pack_dense  # the cuda kernels from the next frame on, where loaded
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''
            plain = f'cuda kernels ({self.kernels.kind})' if self.kernels else 'eager'
            self.postprocess_mode = f'{plain} (compilation failed: {type(exc).__name__}: {first})'
            return pack_dense(*args)
        self._pack_compiled = True
        return out

    def preprocess(self, images: Sequence[np.ndarray]) -> List[_Slot]:
        """Stage the images and start their (non-blocking) uploads; return their slots."""
        with self.on_stream():
            return self._stage(images)

    def _stage(self, images: Sequence[np.ndarray]) -> List[_Slot]:
        """:meth:`preprocess` on the pipeline's stream, which the caller made current."""
        if len(images) > self.batch:
            raise ValueError(f'{len(images)} images for a batch-{self.batch} pipeline')
        slots = []
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f'expected an HxWx3 uint8 image, got {image.shape} {image.dtype}')
            slot = self._slot(i, (int(image.shape[0]), int(image.shape[1])))
            np.copyto(slot.staging.numpy(), image)  # one thread: see the module docstring
            if self.cuda:
                slot.device_image.copy_(slot.staging, non_blocking=True)
            slots.append(slot)
        return slots

    def _run_device(self, slots: Sequence[_Slot], bgr: Sequence[bool]) -> tuple:
        if not self.use_graph:
            return self._device_work_or_fallback(slots, bgr)
        key = (tuple(s.geometry.source_hw for s in slots), tuple(bool(b) for b in bgr))
        entry = self._graphs.get(key)
        if entry is None:
            seen = self._seen.get(key, 0) + 1
            self._seen[key] = seen
            if seen <= self.capture_after:
                return self._eager_before_capture(slots, bgr)
            # the last eager frame's output would keep its activations' blocks taken
            self.raw = None
            torch.cuda.synchronize(self.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool, stream=self.stream):
                outputs = self._device_work(slots, bgr)
            entry = (graph, outputs)
            self._graphs[key] = entry
            # whatever the eager frames left cached outside the pool goes back to the device
            torch.cuda.empty_cache()
        entry[0].replay()
        self.graph_replays += 1
        return entry[1]

    def _eager_before_capture(self, slots: Sequence[_Slot], bgr: Sequence[bool]) -> tuple:
        """
        Run a warm-up frame eagerly, its scratch in the graphs' pool (where there is one).

        The capture that follows reuses the blocks these frames freed. With the warm-up's
        activations in segments of their own, the device held them and the graph's at once until
        the capture ended: 20-22 MB above the steady state on a lent H100 (yolo11n fp16, fp32).
        Sharing the pool is safe because all of it runs in order on the one stream, and no eager
        output outlives the next frame (``self.raw`` is replaced by every frame).
        """
        if self._mempool is None:
            return self._device_work_or_fallback(slots, bgr)
        # torch allocates a cuBLAS workspace (CUBLAS_WORKSPACE) per thread and stream on first
        # use, and keeps it for good: made in the pool, it would keep the pool's segments from
        # going back to the device at close. A tiny product makes it outside (a no-op once it
        # exists; these frames are few, so it is not worth remembering per thread)
        probe = torch.ones((2, 2), dtype=self.dtype, device=self.device)
        torch.nn.functional.linear(probe, probe, probe[0])
        torch.mm(probe, probe)
        with torch.cuda.use_mem_pool(self._mempool, self.device):
            return self._device_work_or_fallback(slots, bgr)

    def _host_buffers(self, outputs: tuple) -> List[torch.Tensor]:
        src = outputs[1:]
        key = tuple(tuple(t.shape) for t in src)
        bufs = self._host.get(key)
        if bufs is None:
            bufs = [torch.empty(t.shape, dtype=torch.float32 if t.is_floating_point() else t.dtype,
                                pin_memory=self.cuda) for t in src]
            self._host[key] = bufs
        return bufs

    # ------------------------------------------------------------------ the frame
    def detect(self, images: Sequence[np.ndarray], bgr: Sequence[bool],
               settings: NmsSettings) -> List[np.ndarray]:
        """
        Detect on up to ``batch`` images; return one (N, 6) float32 array each, source pixels.

        Rows are x1, y1, x2, y2, score, class, sorted by score.
        """
        t0 = time.perf_counter()
        # one entry into the stream context per frame (see StreamSwitch)
        with torch.inference_mode(), self.on_stream():
            slots = self._stage(images)
            self._t_pre = time.perf_counter() - t0
            return self._finish(slots, bgr, settings)

    def finish(self, slots: Sequence[_Slot], bgr: Sequence[bool],
               settings: NmsSettings) -> List[np.ndarray]:
        """Run the device part for already uploaded ``slots`` and bring back the detections."""
        with torch.inference_mode(), self.on_stream():
            return self._finish(slots, bgr, settings)

    def _finish(self, slots: Sequence[_Slot], bgr: Sequence[bool],
                settings: NmsSettings) -> List[np.ndarray]:
        """:meth:`finish` on the pipeline's stream, which the caller made current."""
        n = len(slots)
        if n == 0:
            return []
        t_start = time.perf_counter()
        self._update_settings(settings)
        for i, slot in enumerate(slots):
            if self._bordered[i] != slot.geometry:  # eager, before the graph or eager work
                self.input[i].fill_(PAD_VALUE / 255.0)
                self._source_map[i].copy_(torch.from_numpy(source_map_rows(slot.geometry)))
                self._bordered[i] = slot.geometry
        if settings.multi_label and not self.end2end:
            # one row per (box, class): data-dependent sizes, always the exact eager path
            outputs = self._device_work_or_fallback(slots, bgr)
            return [self._to_source(exact_dense(outputs[0][i], settings).cpu().numpy(),
                                    slots[i].geometry) for i in range(n)]
        outputs = self._run_device(slots, bgr)
        self.raw = outputs[0]
        bufs = self._host_buffers(outputs)
        for buf, t in zip(bufs, outputs[1:]):
            buf.copy_(t, non_blocking=self.cuda)  # one tensor: the end2end rows or packed
        if self.stream is not None:
            self.stream.synchronize()
        t_synced = time.perf_counter()
        results = []
        host = bufs[0].numpy()
        for i in range(n):  # the rows are new arrays (mask, astype), in source pixels already
            if self.end2end:
                results.append(decode_end2end(host[i], settings))
                continue
            kept, converged, overflow = unpack_dense(host[i])
            if converged and not overflow:  # overflowed: the slots missed some boxes
                results.append(kept[:settings.max_det])
            else:
                self.exact_redos += 1
                results.append(self._to_source(exact_dense(self.raw[i], settings).cpu().numpy(),
                                               slots[i].geometry))
        t_end = time.perf_counter()
        self.stage_ms = (self._t_pre * 1e3, (t_synced - t_start) * 1e3,
                         (t_end - t_synced) * 1e3)
        return results

    @staticmethod
    def _to_source(rows: np.ndarray, geometry: LetterboxGeometry) -> np.ndarray:
        out = np.array(rows, dtype=np.float32, copy=True)
        if out.size:
            geometry.boxes_to_source(out[:, :4])
        return out

    def forget_sources(self) -> None:
        """
        Drop the per-source-size buffers and graphs (after a warm-up on a blank image).

        The warm-up image's device buffer would otherwise stay for good. Its room in the
        graphs' pool goes to the first camera's image, allocated there while no graph exists.
        """
        if self.stream is not None:
            self.stream.synchronize()
        self._graphs.clear()
        self._seen.clear()
        self._slots = [{} for _ in range(self.batch)]
        self.raw = None
        if self.cuda:
            torch.cuda.empty_cache()

    def close(self) -> None:
        """Drop graphs, buffers and the stream."""
        self.forget_sources()
        self._host.clear()
        # the buffers in the pool first, then the pool: a pool's segments go back to the device
        # when it is destroyed only if nothing in it is still allocated
        for name in ('input', '_source_map', 'dsettings'):  # (close may run twice)
            self.__dict__.pop(name, None)
        self._constants = None
        self._mempool = None
        if self.cuda:
            torch.cuda.empty_cache()
        if self.stream is not None:
            release_stream(self.device, self.stream)
        self.stream = None


__all__ = ['CUBLASLT_WORKSPACE_KIB', 'CUBLAS_WORKSPACE', 'DecodeConstants', 'DeviceSettings',
           'GpuPipeline', 'ResizePlan', 'StreamSwitch', 'acquire_stream', 'compile_pack_dense',
           'exact_dense', 'exact_end2end', 'fixed_dense_keep', 'letterbox_into',
           'limit_cublas_workspace', 'map_to_source', 'new_mem_pool', 'pack_dense',
           'private_stream', 'release_stream', 'resize_plan', 'source_map_rows', 'unpack_dense',
           'upper_triangle']
