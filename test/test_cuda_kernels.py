# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The runtime-compiled CUDA kernels: compiled by NVRTC wherever it is installed, run on a GPU.

On a GPU every kernel must give the bits torch's kernels give (the GPU pipeline's reference,
itself tested against the NumPy pipeline in test_gpu_pipeline.py).
"""

from typing import Dict, Tuple

import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='torch not installed')

from yolo_jetson_ros.pipeline import cuda_kernels  # noqa: E402
from yolo_jetson_ros.pipeline.cuda_kernels import (  # noqa: E402
    compile_source, KernelError, load_kernels, PipelineKernels, SOURCE)
from yolo_jetson_ros.pipeline.gpu_pipeline import (  # noqa: E402
    GpuPipeline, letterbox_into, pack_dense, resize_plan, source_map_rows, unpack_dense)
from yolo_jetson_ros.pipeline.postprocess import NmsSettings  # noqa: E402
from yolo_jetson_ros.pipeline.preprocess import LetterboxGeometry, PAD_VALUE  # noqa: E402

from test_gpu_pipeline import device_settings, random_dense  # noqa: E402, I100

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


def _nvrtc_or_skip() -> None:
    try:
        cuda_kernels._load_nvrtc()
    except KernelError as exc:
        pytest.skip(f'NVRTC (libnvrtc, the CUDA runtime compiler) is not installed: {exc}')


# Jetson Orin (8.7), x86 Ampere (8.6), Ada (8.9), Hopper (9.0), Blackwell (10.0, 12.0), Thor (11.0)
@pytest.mark.parametrize('capability', [(8, 7), (8, 6), (8, 9), (9, 0), (10, 0), (11, 0),
                                        (12, 0)])
def test_the_kernels_compile_for_jetson_and_server_gpus(capability: Tuple[int, int]) -> None:
    _nvrtc_or_skip()
    image, kind = compile_source(SOURCE, capability, ['SLOTS=256'])
    assert kind in ('cubin', 'ptx') and len(image) > 1000
    for name in cuda_kernels.KERNEL_NAMES:
        assert name.encode() in image  # extern "C": the names the launches look up


def test_a_compilation_error_names_the_problem() -> None:
    _nvrtc_or_skip()
    with pytest.raises(KernelError, match='NVRTC compilation failed: .*undefined_thing'):
        compile_source('extern "C" __global__ void k() { undefined_thing(); }', (8, 7))


def test_a_missing_nvrtc_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda_kernels, '_nvrtc_candidates', lambda: ['libnvrtc.so.0-missing'])
    expected = (r"NVRTC \(libnvrtc\) not found: add the CUDA toolkit's lib folder to "
                r'LD_LIBRARY_PATH .*libnvrtc.so.0-missing')
    with pytest.raises(KernelError, match=expected):
        compile_source(SOURCE, (8, 7))


def test_load_kernels_says_why_not_off_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels, why = load_kernels(torch.device('cpu'), 256)
    assert kernels is None and why == 'the kernels are for CUDA devices, not cpu'
    monkeypatch.setenv('YOLO_JETSON_ROS_CUDA_KERNELS', '0')
    kernels, why = load_kernels(torch.device('cuda', 0), 256)
    assert kernels is None and why == 'YOLO_JETSON_ROS_CUDA_KERNELS=0'


@pytest.mark.parametrize('slots', [0, 100, 288, 1024])
def test_unsupported_slot_counts_are_refused(slots: int) -> None:
    with pytest.raises(KernelError, match='NMS slots'):
        PipelineKernels(torch.device('cuda', 0), slots)


def test_a_cpu_pipeline_runs_without_them() -> None:
    pipe = GpuPipeline(lambda t: t, (640, 640), 1, 'cpu', torch.float32, True, 80)
    assert pipe.kernels is None and pipe.postprocess_mode == 'eager'


# ------------------------------------------------------------------------------------- on a GPU
def _kernels(slots: int = 256) -> PipelineKernels:
    kernels, why = load_kernels(torch.device('cuda', 0), slots)
    if kernels is None:
        pytest.skip(f'the cuda kernels cannot load here: {why}')
    return kernels


@needs_cuda
@pytest.mark.parametrize('dtype', [torch.float16, torch.float32])
@pytest.mark.parametrize('source_hw', [(480, 640), (1080, 810), (333, 517), (640, 640),
                                       (100, 2000), (200, 150)])
@pytest.mark.parametrize('bgr', [True, False])
def test_cuda_letterbox_kernel_is_bit_identical(sample_images: Dict[str, np.ndarray],
                                                source_hw: Tuple[int, int], dtype: torch.dtype,
                                                bgr: bool) -> None:
    # downscaled, upscaled (200x150), identity (640x640) and extreme aspect ratios
    kernels = _kernels()
    import cv2
    image = cv2.resize(sample_images['zidane.jpg'], source_hw[::-1])
    src = torch.from_numpy(image).cuda()
    geometry = LetterboxGeometry.compute(source_hw, (640, 640))
    plan = resize_plan(source_hw, geometry.resized_hw, torch.device('cuda', 0))
    expected = torch.full((3, 640, 640), PAD_VALUE / 255.0, dtype=dtype, device='cuda')
    got = expected.clone()
    letterbox_into(expected, src, geometry, plan, bgr, fill=False)
    kernels.letterbox(got, src, plan, geometry.top, geometry.left, geometry.resized_hw, bgr)
    assert torch.equal(got, expected)


def _compare_decode(raw: np.ndarray, settings: NmsSettings, dtype: torch.dtype,
                    source_hw: Tuple[int, int] = (480, 640)) -> Tuple[int, int]:
    """Assert the kernels' decode equals pack_dense's; return (kept rows, overflowed images)."""
    kernels = _kernels()
    pred = torch.from_numpy(raw).to('cuda', dtype)
    ds = device_settings(settings, raw.shape[1] - 4, 'cuda')
    geometry = LetterboxGeometry.compute(source_hw, (640, 640))
    source_map = torch.from_numpy(np.stack([source_map_rows(geometry)] * raw.shape[0])).cuda()
    # enough Cluster-NMS iterations to converge: the reference is greedy NMS either way
    expected = pack_dense(pred, ds, 256, 256, source_map=source_map).cpu().numpy()
    got = kernels.decode_nms(pred, ds.conf, ds.iou, ds.class_weight, ds.class_offset,
                             source_map).cpu().numpy()
    assert got.shape == expected.shape
    kept_rows = overflowed = 0
    for b in range(raw.shape[0]):
        kept, converged, overflow = unpack_dense(expected[b])
        got_kept, got_converged, got_overflow = unpack_dense(got[b])
        assert got_converged and converged
        assert got_overflow == overflow
        overflowed += overflow
        # the same slots in the same order, so the same kept rows, bit for bit
        np.testing.assert_array_equal(got_kept, kept)
        kept_rows += len(kept)
    return kept_rows, overflowed


@needs_cuda
@pytest.mark.parametrize('dtype', [torch.float16, torch.float32])
@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('kwargs', [{}, {'agnostic': True}, {'classes': [0, 3, 7]},
                                    {'conf': 0.4, 'iou': 0.3}, {'iou': 0.9}])
def test_cuda_decode_kernels_equal_pack_dense(seed: int, kwargs: dict,
                                              dtype: torch.dtype) -> None:
    raw = random_dense(seed, anchors=1000, batch=3)
    kept, overflowed = _compare_decode(raw, NmsSettings(**kwargs), dtype)
    assert kept > 10 and overflowed == 0


@needs_cuda
def test_cuda_decode_kernels_flag_overflow_and_keep_anchor_order_on_ties() -> None:
    # 8400 anchors at conf 0.05: far more than 256 pass, in every image
    raw = random_dense(5, anchors=8400, batch=2)
    _kept, overflowed = _compare_decode(raw, NmsSettings(conf=0.05), torch.float16)
    assert overflowed == 2
    # equal fp16 scores on overlapping boxes: the lower anchor wins, wherever the boxes sit
    tie = np.zeros((1, 84, 64), np.float32)
    tie[0, :4, 10] = tie[0, :4, 40] = (100, 100, 50, 50)
    tie[0, 0, 40] = 104
    tie[0, 4 + 2, 10] = tie[0, 4 + 2, 40] = 0.75
    kept, overflowed = _compare_decode(tie, NmsSettings(), torch.float16)
    assert kept == 1 and overflowed == 0


@needs_cuda
@pytest.mark.parametrize('batch', [1, 2])
def test_cuda_pipeline_with_kernels_equals_torch_kernels(yolo11n_pt: object,
                                                         sample_images: Dict[str, np.ndarray],
                                                         batch: int) -> None:
    # the real model in fp16, graphs captured: the same network input and detections, bit for bit
    from yolo_jetson_ros.pipeline.backends.torch_backend import TorchBackend
    _kernels()
    backend = TorchBackend(yolo11n_pt, 'cuda:0', half=True, batch=batch)
    images = [sample_images['bus.jpg'], sample_images['zidane.jpg']]
    pipes = {use: GpuPipeline(backend.forward, (640, 640), batch, 'cuda:0', torch.float16,
                              False, 80, capture_after=1, cuda_kernels=use)
             for use in (True, False)}
    assert pipes[True].postprocess_mode.startswith('cuda kernels')
    assert pipes[False].postprocess_mode == 'eager'
    for settings in (NmsSettings(), NmsSettings(conf=0.05, iou=0.5, classes=[0, 5])):
        for _ in range(3):
            for image in images:
                got = pipes[True].detect([image], [True], settings)[0]
                expected = pipes[False].detect([image], [True], settings)[0]
                np.testing.assert_array_equal(got, expected)
                assert torch.equal(pipes[True].input, pipes[False].input)
    assert pipes[True].graph_replays >= 6
    for pipe in pipes.values():
        pipe.close()
    backend.close()


@needs_cuda
def test_cuda_a_kernel_the_driver_refuses_falls_back_to_torch_kernels(
        sample_images: Dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    # the first (eager) frame finds it: that frame and every later one run torch's kernels
    from test_gpu_pipeline import _cuda_dense_forward
    kernels = _kernels()
    forward = _cuda_dense_forward()
    image, settings = sample_images['bus.jpg'], NmsSettings()
    plain = GpuPipeline(forward, (640, 640), 1, 'cuda:0', torch.float16, False, 80,
                        capture_after=1, cuda_kernels=False)
    expected = plain.detect([image], [True], settings)[0]

    def refused(*_args: object) -> None:
        raise KernelError('cuLaunchKernel(letterbox_f16) failed: CUDA error 701 (too many '
                          'resources requested for launch)')

    monkeypatch.setattr(kernels, 'letterbox', refused)  # the shared kernels: restored after
    pipe = GpuPipeline(forward, (640, 640), 1, 'cuda:0', torch.float16, False, 80,
                       capture_after=1)
    assert pipe.kernels is kernels
    for _ in range(3):  # eager, captured, replayed
        np.testing.assert_array_equal(pipe.detect([image], [True], settings)[0], expected)
    assert pipe.kernels is None and pipe.graph_replays >= 1
    assert pipe.postprocess_mode == ('eager (cuda kernels failed: cuLaunchKernel(letterbox_f16) '
                                     'failed: CUDA error 701 (too many resources requested for '
                                     'launch))')
    plain.close()
    pipe.close()
