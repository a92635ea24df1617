# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The GPU pipeline's letterbox and decode + NMS as three CUDA kernels, compiled at run time (NVRTC).

With torch's own kernels, the letterbox of one image takes about ten kernels and the fixed-shape
decode + NMS about forty; inside a CUDA graph each costs a few microseconds however small, so on
a lent H100 the decode alone took 154 us of a 1.15 ms frame (yolo11n fp16). These kernels do the
same work in three launches per frame, with the same float32 arithmetic (no contraction into
FMAs, correctly rounded division), so their results are bit-identical to the torch path's:

* ``letterbox_*``: one thread per resized pixel, bilinear as :func:`gpu_pipeline.letterbox_into`
  (horizontal pass, then vertical, rounded to uint8 values, times 1/255 as torch's division by a
  scalar), BGR->RGB, into the network input's region;
* ``best_class_*``: one thread per anchor, the best class score (first index on ties), times the
  class filter's weight;
* ``select_nms``: one block per image. The anchors whose score passes ``conf`` fill ``SLOTS``
  slots in anchor order (a block-wide prefix count), then exact greedy NMS over them (the visiting
  order: higher score first, ties by anchor, as the host's stable sort; a bit matrix of IoU >
  ``iou`` among the slots, scanned by one warp), and the rows are written in
  :func:`gpu_pipeline.pack_dense`'s layout, boxes mapped to source pixels.

NVRTC ships with every CUDA toolkit and with torch's CUDA wheels, so this needs no compiler, no
Triton and no CUDA headers (fp16 goes through two PTX conversions). Where NVRTC or the driver
library is missing, or the compilation fails, :func:`load_kernels` says why and the pipeline runs
torch's kernels. Launches go on torch's current stream, so CUDA graphs capture them.
"""

import ctypes
import ctypes.util
import glob
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .resize_plan import ResizePlan

# The largest number of NMS slots the select_nms kernel serves: one thread per slot for the
# suppression matrix, and its bits (SLOTS x SLOTS / 8 bytes) in shared memory beside the rows.
MAX_SLOTS = 256
_THREADS = 1024  # select_nms's block: the prefix count takes 1024 anchors per step

SOURCE = r"""
typedef unsigned short half_bits;

__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const half_bits* p) {
    float f; asm("{cvt.f32.f16 %0, %1;}" : "=f"(f) : "h"(*p)); return f;
}
__device__ __forceinline__ void st(float* p, float v) { *p = v; }
__device__ __forceinline__ void st(half_bits* p, float v) {
    half_bits h; asm("{cvt.rn.f16.f32 %0, %1;}" : "=h"(h) : "f"(v)); *p = h;
}

// ------------------------------------------------------------------------------------ letterbox
template <typename T>
__device__ void letterbox(const unsigned char* src, int src_w,
                          const long long* y0, const long long* y1, const float* wy,
                          const long long* x0, const long long* x1, const float* wx,
                          int new_h, int new_w, int top, int left, int identity, int bgr,
                          T* dst, int dst_h, int dst_w) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= new_h * new_w) return;
    int yy = i / new_w, xx = i - yy * new_w;
    float v[3];
    if (identity) {
        const unsigned char* p = src + ((long long)yy * src_w + xx) * 3;
        for (int c = 0; c < 3; ++c) v[c] = (float)p[c];
    } else {
        // as letterbox_into: cols = s[x0] * (1 - wx) + s[x1] * wx per row, then the rows alike,
        // each product and sum rounded on its own (no FMA), then rounded half to even
        float fx = wx[xx], gx = __fsub_rn(1.0f, fx), fy = wy[yy], gy = __fsub_rn(1.0f, fy);
        const unsigned char* r0 = src + y0[yy] * src_w * 3;
        const unsigned char* r1 = src + y1[yy] * src_w * 3;
        long long a0 = x0[xx] * 3, a1 = x1[xx] * 3;
        for (int c = 0; c < 3; ++c) {
            float c0 = __fadd_rn(__fmul_rn((float)r0[a0 + c], gx),
                                 __fmul_rn((float)r0[a1 + c], fx));
            float c1 = __fadd_rn(__fmul_rn((float)r1[a0 + c], gx),
                                 __fmul_rn((float)r1[a1 + c], fx));
            v[c] = rintf(__fadd_rn(__fmul_rn(c0, gy), __fmul_rn(c1, fy)));
        }
    }
    // torch divides by a scalar as a product with its float32 reciprocal
    const float inv = 1.0f / 255.0f;
    long long plane = (long long)dst_h * dst_w;
    long long at = (long long)(top + yy) * dst_w + left + xx;
    for (int c = 0; c < 3; ++c) st(dst + c * plane + at, __fmul_rn(v[bgr ? 2 - c : c], inv));
}

// one extern "C" entry point per element type of the network's input or output (no name
// mangling, so the launches find them by name)
#define LETTERBOX_ENTRY(NAME, T)                                                                \
    extern "C" __global__ void NAME(                                                            \
            const unsigned char* src, int src_w, const long long* y0, const long long* y1,      \
            const float* wy, const long long* x0, const long long* x1, const float* wx,         \
            int new_h, int new_w, int top, int left, int identity, int bgr, T* dst, int dst_h,  \
            int dst_w) {                                                                        \
        letterbox(src, src_w, y0, y1, wy, x0, x1, wx, new_h, new_w, top, left, identity, bgr,   \
                  dst, dst_h, dst_w);                                                           \
    }
LETTERBOX_ENTRY(letterbox_f16, half_bits)
LETTERBOX_ENTRY(letterbox_f32, float)

// ------------------------------------------------------------------------------------ best class
template <typename T>
__device__ void best_class(const T* pred, int nc, int anchors, const float* class_weight,
                           float* score, int* cls) {
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= anchors) return;
    int b = blockIdx.y;
    const T* p = pred + ((long long)b * (4 + nc) + 4) * anchors + a;
    float best = ld(p);
    int best_c = 0;
    for (int c = 1; c < nc; ++c) {  // the first maximum, NaN counting as the largest (as torch)
        float v = ld(p + (long long)c * anchors);
        if (v > best || (v != v && best == best)) { best = v; best_c = c; }
    }
    score[(long long)b * anchors + a] = __fmul_rn(best, class_weight[best_c]);
    cls[(long long)b * anchors + a] = best_c;
}

#define BEST_CLASS_ENTRY(NAME, T)                                                               \
    extern "C" __global__ void NAME(const T* pred, int nc, int anchors,                         \
                                    const float* class_weight, float* score, int* cls) {        \
        best_class(pred, nc, anchors, class_weight, score, cls);                                \
    }
BEST_CLASS_ENTRY(best_class_f16, half_bits)
BEST_CLASS_ENTRY(best_class_f32, float)

// ------------------------------------------------------------------------------ select and NMS
#define WORDS (SLOTS / 32)

template <typename T>
__device__ void select_nms(const T* pred, int nc, int anchors, const float* score,
                           const int* cls, const float* conf_p, const float* iou_p,
                           const float* offset_p, const float* source_map, float* out) {
    __shared__ int warp_count[32];
    __shared__ int running;
    __shared__ int slot_anchor[SLOTS];
    __shared__ float s_score[SLOTS];
    __shared__ float s_box[SLOTS][4];
    __shared__ float s_shift[SLOTS][4];
    __shared__ float s_area[SLOTS];
    __shared__ float s_cls[SLOTS];
    __shared__ int s_rank[SLOTS];
    __shared__ int s_order[SLOTS];
    __shared__ unsigned s_mask[SLOTS][WORDS];
    __shared__ unsigned char s_keep[SLOTS];

    // launched with 1024 threads (32 full warps): the prefix count scans one count per warp
    const int b = blockIdx.x, t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const float conf = *conf_p, iou_thr = *iou_p, offset = *offset_p;
    const float* sc = score + (long long)b * anchors;
    if (t == 0) running = 0;
    __syncthreads();
    // 1. the passing anchors, in anchor order, into the slots (a prefix count per 1024 anchors)
    for (int base = 0; base < anchors; base += blockDim.x) {
        int a = base + t;
        bool passed = a < anchors && sc[a] > conf;
        unsigned ballot = __ballot_sync(0xffffffffu, passed);
        if (lane == 0) warp_count[warp] = __popc(ballot);
        __syncthreads();
        if (warp == 0) {  // exclusive scan of the 32 warps' counts
            int n = warp_count[lane], x = n;
            for (int d = 1; d < 32; d <<= 1) {
                int y = __shfl_up_sync(0xffffffffu, x, d);
                if (lane >= d) x += y;
            }
            warp_count[lane] = x - n;
        }
        __syncthreads();
        int slot = running + warp_count[warp] + __popc(ballot & ((1u << lane) - 1u));
        if (passed && slot < SLOTS) slot_anchor[slot] = a;
        __syncthreads();
        if (t == blockDim.x - 1) running = slot + (passed ? 1 : 0);
        __syncthreads();
    }
    const int total = running, n = total < SLOTS ? total : SLOTS;
    const T* pb = pred + (long long)b * (4 + nc) * anchors;
    // 2. the slots' boxes: corners x -+ w / 2 (w * 0.5 is exact), shifted by class * offset
    if (t < n) {
        int a = slot_anchor[t];
        float x = ld(pb + a), y = ld(pb + anchors + a);
        float w = ld(pb + 2 * anchors + a), h = ld(pb + 3 * anchors + a);
        float c = (float)cls[(long long)b * anchors + a];
        float box[4] = {__fadd_rn(x, __fmul_rn(w, -0.5f)), __fadd_rn(y, __fmul_rn(h, -0.5f)),
                        __fadd_rn(x, __fmul_rn(w, 0.5f)), __fadd_rn(y, __fmul_rn(h, 0.5f))};
        float shift = __fmul_rn(c, offset);
        for (int j = 0; j < 4; ++j) {
            s_box[t][j] = box[j];
            s_shift[t][j] = __fadd_rn(box[j], shift);
        }
        s_area[t] = __fmul_rn(__fsub_rn(s_shift[t][2], s_shift[t][0]),
                              __fsub_rn(s_shift[t][3], s_shift[t][1]));
        s_score[t] = sc[a];
        s_cls[t] = c;
    }
    __syncthreads();
    // 3. the visiting order: higher score first, equal scores in anchor (= slot) order
    if (t < n) {
        float s = s_score[t];
        int rank = 0;
        for (int j = 0; j < n; ++j) {
            float r = s_score[j];
            rank += (r > s) || (r == s && j < t);
        }
        s_rank[t] = rank;
        s_order[rank] = t;
    }
    __syncthreads();
    // 4. mask[p][word]: bit q set where q > p in visiting order and IoU(p, q) > iou
    for (int cell = t; cell < SLOTS * WORDS; cell += blockDim.x) {
        int p = cell / WORDS, word = cell - p * WORDS;
        unsigned bits = 0;
        if (p < n) {
            const float* bp = s_shift[s_order[p]];
            float ap = s_area[s_order[p]];
            for (int k = 0; k < 32; ++k) {
                int q = word * 32 + k;
                if (q <= p || q >= n) continue;
                const float* bq = s_shift[s_order[q]];
                float iw = __fsub_rn(fminf(bp[2], bq[2]), fmaxf(bp[0], bq[0]));
                float ih = __fsub_rn(fminf(bp[3], bq[3]), fmaxf(bp[1], bq[1]));
                float inter = __fmul_rn(fmaxf(iw, 0.0f), fmaxf(ih, 0.0f));
                float u = __fsub_rn(__fadd_rn(ap, s_area[s_order[q]]), inter);
                if (__fdiv_rn(inter, u) > iou_thr) bits |= 1u << k;
            }
        }
        s_mask[p][word] = bits;
    }
    __syncthreads();
    // 5. greedy NMS in visiting order, one warp: lane w holds word w of the removed set
    if (warp == 0) {
        unsigned removed = 0;
        for (int p = 0; p < n; ++p) {
            unsigned word = __shfl_sync(0xffffffffu, removed, p >> 5);
            bool keep = !((word >> (p & 31)) & 1u);
            if (lane == 0) s_keep[p] = keep;
            if (keep && lane < WORDS) removed |= s_mask[p][lane];
        }
    }
    __syncthreads();
    // 6. pack_dense's layout: SLOTS rows (box in source pixels, score, class), SLOTS keep
    // flags, converged (greedy NMS is exact: always), overflow
    float* o = out + (long long)b * (7 * SLOTS + 2);
    if (t < SLOTS) {
        float row[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        float keep = 0.0f;
        if (t < n) {
            for (int j = 0; j < 4; ++j) row[j] = s_box[t][j];
            if (source_map != 0) {  // (box - offset) / gain, clamped to [0, limit]
                const float* m = source_map + b * 12;
                for (int j = 0; j < 4; ++j)
                    row[j] = fminf(fmaxf(__fdiv_rn(__fsub_rn(row[j], m[j]), m[4 + j]), 0.0f),
                                   m[8 + j]);
            }
            row[4] = s_score[t];
            row[5] = s_cls[t];
            keep = s_keep[s_rank[t]] ? 1.0f : 0.0f;
        }
        for (int j = 0; j < 6; ++j) o[t * 6 + j] = row[j];
        o[6 * SLOTS + t] = keep;
    }
    if (t == 0) {
        o[7 * SLOTS] = 1.0f;
        o[7 * SLOTS + 1] = total > SLOTS ? 1.0f : 0.0f;
    }
}

#define SELECT_NMS_ENTRY(NAME, T)                                                               \
    extern "C" __global__ void __launch_bounds__(1024) NAME(                                    \
            const T* pred, int nc, int anchors, const float* score, const int* cls,             \
            const float* conf, const float* iou, const float* offset, const float* source_map,  \
            float* out) {                                                                       \
        select_nms(pred, nc, anchors, score, cls, conf, iou, offset, source_map, out);          \
    }
SELECT_NMS_ENTRY(select_nms_f16, half_bits)
SELECT_NMS_ENTRY(select_nms_f32, float)
"""

KERNEL_NAMES = ('letterbox_f16', 'letterbox_f32', 'best_class_f16', 'best_class_f32',
                'select_nms_f16', 'select_nms_f32')


class KernelError(RuntimeError):
    """NVRTC or the CUDA driver refused a step; the message names the step and the error."""


def _nvrtc_candidates() -> List[str]:
    """Where libnvrtc may be: the soname torch's CUDA major version uses, then the others."""
    names: List[str] = []
    major = (torch.version.cuda or '').split('.')[0]
    if major:
        names.append(f'libnvrtc.so.{major}')
    names += ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so.11.2', 'libnvrtc.so']
    found = ctypes.util.find_library('nvrtc')
    if found:
        names.append(found)
    # pip's CUDA wheels (torch preloads them, so a soname usually resolves already), then a toolkit
    for root in sys.path:
        names += sorted(glob.glob(os.path.join(root, 'nvidia', '*', 'lib', 'libnvrtc.so*')))
        names += sorted(glob.glob(os.path.join(root, 'nvidia', 'cu*', 'lib', 'libnvrtc.so*')))
    cuda_home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH') or '/usr/local/cuda'
    names += sorted(glob.glob(os.path.join(cuda_home, 'lib*', 'libnvrtc.so*')))
    names += sorted(glob.glob(os.path.join(cuda_home, 'targets', '*', 'lib', 'libnvrtc.so*')))
    return list(dict.fromkeys(names))  # in order, once each


def _load_nvrtc() -> ctypes.CDLL:
    tried = []
    for name in _nvrtc_candidates():
        if 'builtins' in os.path.basename(name):
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            tried.append(name)
    raise KernelError("NVRTC (libnvrtc) not found: add the CUDA toolkit's lib folder to "
                      'LD_LIBRARY_PATH or install NVRTC (JetPack: the cuda-nvrtc package; pip: '
                      'nvidia-cuda-nvrtc); tried ' + ', '.join(tried[:4]))


def _check(lib: ctypes.CDLL, result: int, step: str) -> None:
    """Raise :class:`KernelError` for a non-zero driver result."""
    if result != 0:
        text = ctypes.c_char_p()
        lib.cuGetErrorString(result, ctypes.byref(text))
        detail = text.value.decode(errors='replace') if text.value else 'unknown error'
        raise KernelError(f'{step} failed: CUDA error {result} ({detail})')


def compile_source(source: str, capability: Tuple[int, int],
                   defines: Sequence[str] = ()) -> Tuple[bytes, str]:
    """
    Compile ``source`` with NVRTC for a device of ``capability``; return (image, kind).

    ``kind`` is 'cubin' where this NVRTC knows the device's architecture, else 'ptx' for the
    newest virtual architecture it knows that the device runs (the driver compiles that at load).
    FMA contraction is off, so float32 arithmetic is as written.
    """
    nvrtc = _load_nvrtc()
    nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(result: int, step: str) -> None:
        if result != 0:
            raise KernelError(f'{step} failed: {nvrtc.nvrtcGetErrorString(result).decode()}')

    arch = capability[0] * 10 + capability[1]
    supported: List[int] = []
    count = ctypes.c_int()
    if nvrtc.nvrtcGetNumSupportedArchs(ctypes.byref(count)) == 0 and count.value > 0:
        archs = (ctypes.c_int * count.value)()
        if nvrtc.nvrtcGetSupportedArchs(archs) == 0:
            supported = list(archs)
    if not supported or arch in supported:
        kind, target = 'cubin', f'--gpu-architecture=sm_{arch}'
    else:
        older = [a for a in supported if a <= arch]
        if not older:
            raise KernelError(f'NVRTC knows no architecture for sm_{arch} (it knows {supported})')
        kind, target = 'ptx', f'--gpu-architecture=compute_{max(older)}'
    options = [target.encode(), b'--fmad=false', b'-default-device', b'--std=c++14']
    options += [f'-D{d}'.encode() for d in defines]
    program = ctypes.c_void_p()
    check(nvrtc.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b'kernels.cu', 0,
                                   None, None), 'nvrtcCreateProgram')
    try:
        result = nvrtc.nvrtcCompileProgram(program, len(options),
                                           (ctypes.c_char_p * len(options))(*options))
        if result != 0:
            size = ctypes.c_size_t()
            nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            nvrtc.nvrtcGetProgramLog(program, log)
            raise KernelError('NVRTC compilation failed: ' + log.value.decode(errors='replace'))
        size = ctypes.c_size_t()
        get_size, get = ((nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN) if kind == 'cubin'
                         else (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX))
        check(get_size(program, ctypes.byref(size)), f'nvrtcGet{kind.upper()}Size')
        image = ctypes.create_string_buffer(size.value)
        check(get(program, image), f'nvrtcGet{kind.upper()}')
        return image.raw, kind
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


class PipelineKernels:
    """The compiled kernels on one device, and their launches on torch's current stream."""

    def __init__(self, device: torch.device, slots: int):
        """Compile (NVRTC) and load the kernels for ``device``; raise :class:`KernelError`."""
        if slots < 1 or slots > MAX_SLOTS or slots % 32:
            raise KernelError(f'the kernels serve 32..{MAX_SLOTS} NMS slots in steps of 32, '
                              f'not {slots}')
        self.slots = slots
        self.index = torch.cuda.current_device() if device.index is None else device.index
        try:
            self._cuda = ctypes.CDLL('libcuda.so.1')
        except OSError as exc:
            raise KernelError(f'the CUDA driver library is not loadable ({exc})') from exc
        image, self.kind = compile_source(
            SOURCE, torch.cuda.get_device_capability(self.index), [f'SLOTS={slots}'])
        with torch.cuda.device(self.index):
            torch.cuda.current_stream().synchronize()  # the runtime made the context current
            self._ensure_context()
            module = ctypes.c_void_p()
            _check(self._cuda, self._cuda.cuModuleLoadData(ctypes.byref(module), image),
                   'cuModuleLoadData')
        self._module = module
        self._functions: Dict[str, ctypes.c_void_p] = {}
        for name in KERNEL_NAMES:
            function = ctypes.c_void_p()
            _check(self._cuda, self._cuda.cuModuleGetFunction(
                ctypes.byref(function), module, name.encode()), f'cuModuleGetFunction({name})')
            self._functions[name] = function

    def _ensure_context(self) -> None:
        """Make the device's primary context current on this thread where none is."""
        current = ctypes.c_void_p()
        _check(self._cuda, self._cuda.cuCtxGetCurrent(ctypes.byref(current)), 'cuCtxGetCurrent')
        if not current.value:
            handle, context = ctypes.c_int(), ctypes.c_void_p()
            _check(self._cuda, self._cuda.cuDeviceGet(ctypes.byref(handle), self.index),
                   'cuDeviceGet')
            _check(self._cuda, self._cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), handle),
                   'cuDevicePrimaryCtxRetain')
            _check(self._cuda, self._cuda.cuCtxSetCurrent(context), 'cuCtxSetCurrent')

    def _launch(self, name: str, grid: Tuple[int, int], block: int,
                args: Sequence[Any]) -> None:
        if torch.cuda.current_device() != self.index:  # the device's context, as torch's own
            with torch.cuda.device(self.index):
                self._launch(name, grid, block, args)
            return
        self._ensure_context()
        # the addresses of the argument values (kept alive by ``args`` through the call);
        # addressof takes a third of the time of cast(byref(...)) in the eager frame path
        pointers = (ctypes.c_void_p * len(args))(*map(ctypes.addressof, args))
        stream = torch.cuda.current_stream(self.index).cuda_stream
        _check(self._cuda, self._cuda.cuLaunchKernel(
            self._functions[name], grid[0], grid[1], 1, block, 1, 1, 0,
            ctypes.c_void_p(stream), pointers, None), f'cuLaunchKernel({name})')

    @staticmethod
    def _suffix(t: torch.Tensor) -> str:
        if t.dtype == torch.float16:
            return 'f16'
        if t.dtype == torch.float32:
            return 'f32'
        raise KernelError(f'no kernel for {t.dtype}')

    def letterbox(self, dst: torch.Tensor, src: torch.Tensor, plan: ResizePlan,
                  top: int, left: int, resized_hw: Tuple[int, int], bgr: bool) -> None:
        """Letterbox the HxWx3 uint8 ``src`` into ``dst`` (3, H, W), as letterbox_into."""
        if not (dst.is_contiguous() and src.is_contiguous()):
            raise KernelError('letterbox needs contiguous tensors')
        new_h, new_w = resized_hw
        p = ctypes.c_void_p
        i = ctypes.c_int
        args = [p(src.data_ptr()), i(src.shape[1]), p(plan.y0.data_ptr()),
                p(plan.y1.data_ptr()), p(plan.wy.data_ptr()), p(plan.x0.data_ptr()),
                p(plan.x1.data_ptr()), p(plan.wx.data_ptr()), i(new_h), i(new_w), i(top),
                i(left), i(int(plan.identity)), i(int(bgr)), p(dst.data_ptr()),
                i(dst.shape[1]), i(dst.shape[2])]
        self._launch('letterbox_' + self._suffix(dst), ((new_h * new_w + 255) // 256, 1), 256,
                     args)

    def decode_nms(self, pred: torch.Tensor, conf: torch.Tensor, iou: torch.Tensor,
                   class_weight: torch.Tensor, class_offset: torch.Tensor,
                   source_map: Optional[torch.Tensor]) -> torch.Tensor:
        """
        Decode and NMS the dense batch ``pred`` (B, 4 + nc, A); return pack_dense's layout.

        ``conf``, ``iou``, ``class_offset`` are 0-d float32 device tensors and ``class_weight``
        (nc,) float32 (read when the kernels run, so a replayed graph sees new values).
        ``source_map`` (B, 3, 4) float32 maps the boxes to source pixels; None leaves them in
        input pixels.
        """
        pred = pred.contiguous()
        batch, channels, anchors = (int(s) for s in pred.shape)
        nc = channels - 4
        if nc < 1 or anchors < 1:
            raise KernelError(f'no dense detections in an output of shape {tuple(pred.shape)}')
        suffix = self._suffix(pred)
        score = torch.empty((batch, anchors), dtype=torch.float32, device=pred.device)
        cls = torch.empty((batch, anchors), dtype=torch.int32, device=pred.device)
        out = torch.empty((batch, 7 * self.slots + 2), dtype=torch.float32, device=pred.device)
        p = ctypes.c_void_p
        i = ctypes.c_int
        self._launch('best_class_' + suffix, ((anchors + 255) // 256, batch), 256,
                     [p(pred.data_ptr()), i(nc), i(anchors), p(class_weight.data_ptr()),
                      p(score.data_ptr()), p(cls.data_ptr())])
        mapping = 0 if source_map is None else source_map.contiguous().data_ptr()
        self._launch('select_nms_' + suffix, (batch, 1), _THREADS,
                     [p(pred.data_ptr()), i(nc), i(anchors), p(score.data_ptr()),
                      p(cls.data_ptr()), p(conf.data_ptr()), p(iou.data_ptr()),
                      p(class_offset.data_ptr()), p(mapping), p(out.data_ptr())])
        return out


_loaded: Dict[Tuple[int, int], PipelineKernels] = {}
_load_lock = threading.Lock()


def load_kernels(device: torch.device, slots: int) -> Tuple[Optional[PipelineKernels], str]:
    """
    Return ``(kernels for device and slots, '')``, or ``(None, why not)``; compiled once.

    Set ``YOLO_JETSON_ROS_CUDA_KERNELS=0`` to use torch's kernels instead.
    """
    if os.environ.get('YOLO_JETSON_ROS_CUDA_KERNELS', '1') == '0':
        return None, 'YOLO_JETSON_ROS_CUDA_KERNELS=0'
    if device.type != 'cuda' or torch.version.hip is not None:
        return None, f'the kernels are for CUDA devices, not {device}'
    index = torch.cuda.current_device() if device.index is None else int(device.index)
    with _load_lock:
        kernels = _loaded.get((index, slots))
        if kernels is None:
            try:
                kernels = PipelineKernels(torch.device('cuda', index), slots)
            except (RuntimeError, OSError, AttributeError, ValueError) as exc:  # KernelError too
                return None, str(exc).strip().splitlines()[0][:300]
            _loaded[(index, slots)] = kernels
    return kernels, ''


__all__ = ['KERNEL_NAMES', 'KernelError', 'MAX_SLOTS', 'PipelineKernels', 'SOURCE',
           'compile_source', 'load_kernels']
