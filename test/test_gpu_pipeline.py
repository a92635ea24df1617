# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The fused GPU pre/post-processing, run with torch on the CPU against the NumPy pipeline.

CUDA-only parts (pinned staging, CUDA-graph capture and replay) run when a GPU is present.
"""

from pathlib import Path
from typing import Dict

import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='torch not installed')

from yolo_jetson_ros.pipeline.gpu_pipeline import (  # noqa: E402
    DeviceSettings, exact_dense, GpuPipeline, letterbox_into, map_to_source, pack_dense,
    resize_plan, source_map_rows, StreamSwitch, unpack_dense)
from yolo_jetson_ros.pipeline.postprocess import decode, MAX_WH, NmsSettings  # noqa: E402
from yolo_jetson_ros.pipeline.preprocess import Letterboxer, LetterboxGeometry  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the IoU of matching rows of two (N, 4) xyxy arrays."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:4], b[:, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def assert_same_detections(ref: np.ndarray, got: np.ndarray, score_tol: float = 0.01,
                           min_iou: float = 0.99) -> None:
    """Assert the same count and classes, boxes IoU >= min_iou, scores within score_tol."""
    assert got.shape == ref.shape, (ref, got)
    if not len(ref):
        return
    assert np.array_equal(ref[:, 5], got[:, 5])
    assert np.abs(ref[:, 4] - got[:, 4]).max() <= score_tol
    assert box_iou(ref, got).min() >= min_iou


def device_settings(settings: NmsSettings, nc: int, device: str = 'cpu') -> DeviceSettings:
    """Build the device-tensor thresholds of ``settings``."""
    weight = torch.ones(nc)
    allowed = settings.class_filter()
    if allowed is not None:
        weight.zero_()
        weight[torch.as_tensor(allowed)] = 1.0
    return DeviceSettings(conf=torch.tensor(settings.conf, device=device),
                          iou=torch.tensor(settings.iou, device=device),
                          class_weight=weight.to(device),
                          class_offset=torch.tensor(0.0 if settings.agnostic else MAX_WH,
                                                    device=device))


def random_dense(seed: int, nc: int = 80, anchors: int = 2000, batch: int = 2) -> np.ndarray:
    """Return a dense (B, 4 + nc, A) output with clustered, overlapping boxes."""
    rng = np.random.default_rng(seed)
    out = np.zeros((batch, 4 + nc, anchors), np.float32)
    centres = rng.uniform(50, 590, (batch, 2, 40))
    pick = rng.integers(0, 40, (batch, anchors))
    for b in range(batch):
        out[b, 0] = centres[b, 0, pick[b]] + rng.normal(0, 6, anchors)
        out[b, 1] = centres[b, 1, pick[b]] + rng.normal(0, 6, anchors)
        out[b, 2:4] = rng.uniform(20, 120, (2, anchors))
    sparse = rng.uniform(0, 1, (batch, nc, anchors)) < 0.01
    out[:, 4:] = rng.uniform(0, 1, (batch, nc, anchors)) ** 8 * sparse
    return out


@pytest.mark.parametrize('name', ['bus.jpg', 'zidane.jpg'])
@pytest.mark.parametrize('bgr', [True, False])
def test_letterbox_matches_cv2(sample_images: Dict[str, np.ndarray], name: str,
                               bgr: bool) -> None:
    image = sample_images[name]
    letterboxer = Letterboxer((640, 640), 1)
    geometry = letterboxer.prepare(image, bgr, 0)
    plan = resize_plan(geometry.source_hw, geometry.resized_hw, torch.device('cpu'))
    out = torch.zeros((3, 640, 640))
    letterbox_into(out, torch.from_numpy(image), geometry, plan, bgr)
    diff = np.abs(out.numpy() - letterboxer.input[0]) * 255
    assert diff.max() <= 1.0 + 1e-3  # cv2 rounds its fixed-point weights: at most one level
    assert (diff > 0.5).mean() < 0.15
    assert np.array_equal(out.numpy()[:, 0, 0], letterboxer.input[0][:, 0, 0])  # padding


def test_letterbox_identity_size() -> None:
    image = np.random.default_rng(0).integers(0, 255, (640, 640, 3), dtype=np.uint8)
    letterboxer = Letterboxer((640, 640), 1)
    geometry = letterboxer.prepare(image, True, 0)
    plan = resize_plan(geometry.source_hw, geometry.resized_hw, torch.device('cpu'))
    out = torch.zeros((3, 640, 640))
    letterbox_into(out, torch.from_numpy(image), geometry, plan, True)
    np.testing.assert_allclose(out.numpy(), letterboxer.input[0], atol=1e-6)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('kwargs', [
    {}, {'agnostic': True}, {'classes': [0, 3, 7]}, {'conf': 0.05, 'iou': 0.5},
    {'max_det': 5}])
def test_fixed_nms_equals_numpy(seed: int, kwargs: dict) -> None:
    raw = random_dense(seed)
    settings = NmsSettings(**kwargs)
    ref = decode(raw, settings, end2end=False)
    packed = pack_dense(torch.from_numpy(raw), device_settings(settings, 80), 1024, 50).numpy()
    for b in range(raw.shape[0]):
        kept, converged, overflow = unpack_dense(packed[b])
        assert converged and not overflow
        assert_same_detections(ref[b], kept[:settings.max_det], score_tol=1e-6,
                               min_iou=1 - 1e-6)


def test_fixed_nms_flags_overflow_and_no_convergence() -> None:
    anchors = 40  # a chain of boxes, each overlapping the next: greedy needs many passes
    raw = np.zeros((1, 84, anchors), np.float32)
    raw[0, 0] = 100 + 5 * np.arange(anchors)
    raw[0, 1] = 100
    raw[0, 2:4] = 50
    raw[0, 4] = np.linspace(0.9, 0.5, anchors)
    settings = NmsSettings()
    ref = decode(raw, settings, end2end=False)[0]
    tensor = torch.from_numpy(raw)
    _kept, converged, overflow = unpack_dense(
        pack_dense(tensor, device_settings(settings, 80), 8, 1).numpy()[0])
    assert overflow and not converged
    kept, converged, overflow = unpack_dense(
        pack_dense(tensor, device_settings(settings, 80), anchors, anchors).numpy()[0])
    assert converged and not overflow
    assert_same_detections(ref, kept, 1e-6, 1 - 1e-6)


@pytest.mark.parametrize('order', [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_fixed_nms_breaks_score_ties_in_anchor_order(order: tuple) -> None:
    # fp16 scores tie often: of two overlapping boxes with the same score, greedy NMS (a stable
    # sort) keeps the one of the lower anchor, wherever the boxes sit among the anchors
    raw = np.zeros((1, 84, 6), np.float32)
    boxes = [(100, 100, 50, 50), (104, 100, 50, 50), (300, 300, 40, 40)]
    scores = [0.75, 0.75, 0.5]
    for anchor, which in zip((1, 3, 4), order):
        raw[0, :4, anchor] = boxes[which]
        raw[0, 4 + which, anchor] = scores[which]
    settings = NmsSettings(agnostic=True)
    ref = decode(raw, settings, end2end=False)[0]
    kept, converged, overflow = unpack_dense(
        pack_dense(torch.from_numpy(raw), device_settings(settings, 80), 6, 4).numpy()[0])
    assert converged and not overflow and len(ref) == 2
    np.testing.assert_array_equal(kept, ref)


@pytest.mark.parametrize('multi_label', [False, True])
def test_exact_dense_equals_numpy(multi_label: bool) -> None:
    raw = random_dense(4)
    settings = NmsSettings(conf=0.2, multi_label=multi_label, classes=[1, 2, 5, 9])
    ref = decode(raw, settings, end2end=False)
    for b in range(raw.shape[0]):
        got = exact_dense(torch.from_numpy(raw[b]), settings).numpy()
        assert_same_detections(ref[b], got, score_tol=1e-6, min_iou=1 - 1e-6)


def _fake_forward(raw: np.ndarray):
    tensor = torch.from_numpy(raw)
    return lambda _input: tensor


def test_pipeline_end2end_output(sample_images: Dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(5)
    raw = np.zeros((1, 300, 6), np.float32)
    raw[0, :, :2] = rng.uniform(0, 300, (300, 2))
    raw[0, :, 2:4] = raw[0, :, :2] + rng.uniform(10, 300, (300, 2))
    raw[0, :, 4] = np.sort(rng.uniform(0, 1, 300))[::-1]
    raw[0, :, 5] = rng.integers(0, 80, 300)
    settings = NmsSettings(conf=0.3, classes=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], max_det=7)
    pipe = GpuPipeline(_fake_forward(raw), (640, 640), 1, 'cpu', torch.float32, True, 80)
    image = sample_images['bus.jpg']
    got = pipe.detect([image], [True], settings)[0]
    letterboxer = Letterboxer((640, 640), 1)
    geometry = letterboxer.prepare(image, True, 0)
    ref = decode(raw, settings, end2end=True)[0]
    ref[:, :4] = geometry.boxes_to_source(ref[:, :4].copy())
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)
    # a read-only image (np.frombuffer of a message's bytes) is staged the same way
    frozen = np.frombuffer(image.tobytes(), np.uint8).reshape(image.shape)
    assert not frozen.flags.writeable
    np.testing.assert_array_equal(pipe.detect([frozen], [True], settings)[0], got)
    staged_frozen = pipe.input.numpy().copy()
    pipe.detect([image], [True], settings)
    np.testing.assert_array_equal(pipe.input.numpy(), staged_frozen)


@pytest.mark.parametrize('settings', [NmsSettings(), NmsSettings(conf=0.001, multi_label=True,
                                                                 max_det=300)])
def test_pipeline_with_real_model_matches_numpy(yolo11n_pt: Path,
                                                sample_images: Dict[str, np.ndarray],
                                                settings: NmsSettings) -> None:
    from yolo_jetson_ros.pipeline.backends.torch_backend import TorchBackend
    backend = TorchBackend(yolo11n_pt, 'cpu', batch=2)
    assert not backend.has_fused_path  # the CPU keeps the NumPy path in the detector
    pipe = GpuPipeline(backend.forward, (640, 640), 2, 'cpu', torch.float32, False, 80)
    images = [sample_images['bus.jpg'], sample_images['zidane.jpg']]
    got = pipe.detect(images, [True, True], settings)
    letterboxer = Letterboxer((640, 640), 2)
    geometries = [letterboxer.prepare(img, True, i) for i, img in enumerate(images)]
    raw = backend.infer(letterboxer.input)
    # then fewer images than the batch: the decode's constants, made for two, serve one
    got_one = pipe.detect(images[:1], [True], settings)
    assert len(got_one) == 1
    expected = decode(raw, settings, False)
    for rows, g, out in zip(expected + expected[:1], geometries + geometries[:1],
                            got + got_one):
        rows = rows.copy()
        rows[:, :4] = g.boxes_to_source(rows[:, :4].copy())
        if settings.multi_label:  # thousands of near-threshold rows: compare the confident ones
            rows, out = rows[rows[:, 4] > 0.25], out[out[:, 4] > 0.25]
        assert_same_detections(rows, out)


@pytest.mark.parametrize('source_hw', [(1080, 810), (720, 1280), (480, 640), (333, 517),
                                       (640, 640), (100, 2000)])
def test_device_box_mapping_equals_boxes_to_source(source_hw: tuple) -> None:
    # the device maps boxes to source pixels with the host's float32 arithmetic: equal bits
    geometry = LetterboxGeometry.compute(source_hw, (640, 640))
    boxes = np.random.default_rng(7).uniform(-50, 700, (2, 300, 4)).astype(np.float32)
    source_map = torch.from_numpy(np.stack([source_map_rows(geometry)] * 2))
    got = map_to_source(torch.from_numpy(boxes), source_map).numpy()
    for b in range(2):
        expected = geometry.boxes_to_source(boxes[b].copy())
        np.testing.assert_array_equal(got[b], expected)


def test_pipeline_input_follows_source_size_changes(sample_images: Dict[str, np.ndarray]) -> None:
    # the pad border is written only when a batch entry's letterbox geometry changes: after
    # each frame of a camera switching sizes, the network input must be that frame's letterbox
    pipe = GpuPipeline(_fake_forward(np.zeros((1, 300, 6), np.float32)), (640, 640), 1, 'cpu',
                       torch.float32, True, 80)
    square = np.random.default_rng(1).integers(0, 255, (640, 640, 3), dtype=np.uint8)
    sequence = [sample_images['bus.jpg'], sample_images['zidane.jpg'], sample_images['bus.jpg'],
                square, sample_images['zidane.jpg'], sample_images['zidane.jpg']]
    for image in sequence:
        pipe.detect([image], [True], NmsSettings())
        letterboxer = Letterboxer((640, 640), 1)
        geometry = letterboxer.prepare(image, True, 0)
        diff = np.abs(pipe.input[0].numpy() - letterboxer.input[0]) * 255
        assert diff.max() <= 1.0 + 1e-3, geometry  # cv2's fixed-point weights: one level
        border = np.ones((640, 640), bool)
        new_h, new_w = geometry.resized_hw
        border[geometry.top:geometry.top + new_h, geometry.left:geometry.left + new_w] = False
        assert np.array_equal(pipe.input[0].numpy()[:, border], letterboxer.input[0][:, border])


@pytest.mark.parametrize('max_candidates, iterations', [(8, 8), (256, 1), (256, 8)])
def test_pipeline_falls_back_to_exact_nms(max_candidates: int, iterations: int) -> None:
    # too few candidate slots (overflow) or too few Cluster-NMS iterations (not converged):
    # the frame is redone on the exact path, so the result stays greedy NMS either way
    raw = torch.from_numpy(random_dense(3, batch=1))

    def forward(tensor: torch.Tensor) -> torch.Tensor:
        return raw.clone()

    settings = NmsSettings()
    pipe = GpuPipeline(forward, (640, 640), 1, 'cpu', torch.float32, False, 80,
                       max_candidates=max_candidates, nms_iterations=iterations)
    image = np.zeros((640, 640, 3), np.uint8)  # identity letterbox: boxes stay as decoded
    got = pipe.detect([image], [True], settings)[0]
    ref = decode(raw.numpy(), settings, False)[0]
    geometry = Letterboxer((640, 640), 1).prepare(image, True, 0)
    ref[:, :4] = geometry.boxes_to_source(ref[:, :4].copy())  # clipped to the image
    assert len(ref) > 100  # clustered boxes: NMS has chains to resolve
    assert_same_detections(ref, got)
    fallback_expected = max_candidates < 256 or iterations == 1
    assert (pipe.exact_redos > 0) == fallback_expected
    again = pipe.detect([image], [True], settings)
    np.testing.assert_array_equal(again[0], got)


def test_compile_postprocess_is_for_cuda_only() -> None:
    pipe = GpuPipeline(_fake_forward(np.zeros((1, 300, 6), np.float32)), (640, 640), 1, 'cpu',
                       torch.float32, True, 80, compile_postprocess=True)
    assert pipe.postprocess_mode == 'eager (compile_postprocess is for CUDA devices)'
    assert pipe._pack is pack_dense


def test_a_failing_compilation_falls_back_to_the_plain_kernels() -> None:
    # inductor or Triton failing at the first frame (where the compilation happens) must cost
    # the speed-up only: the frame, and every later one, runs the plain kernels
    raw = torch.from_numpy(random_dense(3, batch=1))
    settings = NmsSettings()
    image = np.zeros((640, 640, 3), np.uint8)
    plain = GpuPipeline(lambda t: raw.clone(), (640, 640), 1, 'cpu', torch.float32, False, 80)
    expected = plain.detect([image], [True], settings)[0]
    pipe = GpuPipeline(lambda t: raw.clone(), (640, 640), 1, 'cpu', torch.float32, False, 80)
    calls = []

    def broken_compiled(*args: object) -> torch.Tensor:
        calls.append(1)
        raise RuntimeError('InductorError: no working C compiler\nmore detail')

    pipe._pack, pipe.postprocess_mode = broken_compiled, 'compiled'
    np.testing.assert_array_equal(pipe.detect([image], [True], settings)[0], expected)
    assert pipe.postprocess_mode == ('eager (compilation failed: RuntimeError: InductorError: '
                                     'no working C compiler)')
    np.testing.assert_array_equal(pipe.detect([image], [True], settings)[0], expected)
    assert len(calls) == 1 and pipe._pack is pack_dense


def _cuda_dense_forward():
    """Return a CUDA forward with a fixed dense output that still depends on its input."""
    raw = torch.from_numpy(random_dense(6, batch=1)).cuda()

    def forward(tensor: torch.Tensor) -> torch.Tensor:
        # depends on the input, fixed shapes; one output per batch entry
        return raw.expand(tensor.shape[0], -1, -1) * (tensor.mean() * 0 + 1)

    return forward


@needs_cuda
@pytest.mark.parametrize('batch', [1, 2])
def test_cuda_compiled_postprocess_matches_the_plain_kernels(
        sample_images: Dict[str, np.ndarray], batch: int) -> None:
    # batch 2 with one image per frame: the compiled decode runs on the whole batch (one shape,
    # no recompiling in the frame path), the plain one on the images given
    pytest.importorskip('triton', reason='Triton (torch.compile on CUDA) not installed')
    settings = NmsSettings()
    images = [sample_images['zidane.jpg'], sample_images['bus.jpg']]
    results = {}
    for compiled in (False, True):
        pipe = GpuPipeline(_cuda_dense_forward(), (640, 640), batch, 'cuda:0', torch.float16,
                           False, 80, capture_after=1, compile_postprocess=compiled,
                           cuda_kernels=False)
        results[compiled] = [pipe.detect([img], [True], settings)[0] for img in images * 3]
        assert pipe.graph_replays >= 2
        assert pipe.postprocess_mode == ('compiled' if compiled else 'eager')
        pipe.close()
    for plain, fused in zip(results[False], results[True]):
        # the same boxes, scores and classes; coordinates may differ in their last bit (Triton's
        # float32 division is not correctly rounded: <= 6e-5 px at 640 px in this test)
        assert fused.shape == plain.shape
        np.testing.assert_array_equal(fused[:, 4:], plain[:, 4:])
        np.testing.assert_allclose(fused[:, :4], plain[:, :4], rtol=1e-6, atol=1e-4)


@needs_cuda
def test_cuda_stream_switch_makes_current_and_restores() -> None:
    before = torch.cuda.current_stream()
    ours, inner = torch.cuda.Stream(), torch.cuda.Stream()
    with StreamSwitch(ours):
        assert torch.cuda.current_stream() == ours
        with StreamSwitch(inner):
            assert torch.cuda.current_stream() == inner
        assert torch.cuda.current_stream() == ours
        with pytest.raises(RuntimeError, match='inside'):
            with StreamSwitch(inner):
                raise RuntimeError('inside')
        assert torch.cuda.current_stream() == ours
    assert torch.cuda.current_stream() == before
    pipe = GpuPipeline(_cuda_dense_forward(), (640, 640), 1, 'cuda:0', torch.float16, False, 80)
    with pipe.on_stream():
        assert torch.cuda.current_stream() == pipe.stream
    assert torch.cuda.current_stream() == before
    pipe.close()
    if torch.cuda.device_count() > 1:  # a stream of another device: both devices restored
        other = torch.cuda.Stream(device=1)
        before_1 = torch.cuda.current_stream(1)
        with StreamSwitch(other):
            assert torch.cuda.current_stream(1) == other
        assert torch.cuda.current_device() == 0
        assert torch.cuda.current_stream(1) == before_1
        assert torch.cuda.current_stream() == before


@needs_cuda
def test_cuda_graph_replay_matches_eager(sample_images: Dict[str, np.ndarray]) -> None:
    settings = NmsSettings()
    pipe = GpuPipeline(_cuda_dense_forward(), (640, 640), 1, 'cuda:0', torch.float16, False, 80,
                       capture_after=1)
    image = sample_images['zidane.jpg']
    eager = pipe.detect([image], [True], settings)[0]
    for _ in range(3):
        replayed = pipe.detect([image], [True], settings)[0]
        np.testing.assert_allclose(replayed, eager, atol=1e-4)
    assert pipe.graph_replays >= 2
    assert pipe._slots[0][image.shape[:2]].staging.is_pinned()
    settings.conf = 0.5  # thresholds live in device tensors: a change reaches the graph
    fewer = pipe.detect([image], [True], settings)[0]
    assert len(fewer) <= len(eager)
    assert (fewer[:, 4] > 0.5).all()


@needs_cuda
def test_cuda_graphs_follow_alternating_source_sizes(sample_images: Dict[str, np.ndarray]) -> None:
    # one graph per source size; switching between them rewrites the border and the box mapping
    # eagerly: every replay must give what the eager pipeline gives for that image
    forward = _cuda_dense_forward()
    settings = NmsSettings()
    images = [sample_images['bus.jpg'], sample_images['zidane.jpg']]
    eager = GpuPipeline(forward, (640, 640), 1, 'cuda:0', torch.float16, False, 80,
                        use_graph=False)
    expected = []
    for image in images:
        expected.append((eager.detect([image], [True], settings)[0], eager.input.cpu().numpy()))
    pipe = GpuPipeline(forward, (640, 640), 1, 'cuda:0', torch.float16, False, 80,
                       capture_after=1)
    for _ in range(4):
        for image, (rows, network_input) in zip(images, expected):
            got = pipe.detect([image], [True], settings)[0]
            np.testing.assert_allclose(got, rows, atol=1e-4)
            np.testing.assert_array_equal(pipe.input.cpu().numpy(), network_input)
    assert pipe.graph_replays >= 4


def test_limit_cublas_workspace_leaves_a_user_choice() -> None:
    from yolo_jetson_ros.pipeline.gpu_pipeline import (CUBLAS_WORKSPACE, CUBLASLT_WORKSPACE_KIB,
                                                       limit_cublas_workspace)
    env: Dict[str, str] = {}
    assert limit_cublas_workspace(env)
    assert env == {'CUBLAS_WORKSPACE_CONFIG': CUBLAS_WORKSPACE,
                   'CUBLASLT_WORKSPACE_SIZE': CUBLASLT_WORKSPACE_KIB}
    env = {'CUBLAS_WORKSPACE_CONFIG': ':4096:8'}  # torch's default on Hopper, chosen by the user
    assert not limit_cublas_workspace(env)
    assert env == {'CUBLAS_WORKSPACE_CONFIG': ':4096:8'}


@needs_cuda
def test_cuda_configure_and_capture_hold_nothing_beyond_the_steady_state(
        yolo11n_pt: Path, sample_images: Dict[str, np.ndarray], tmp_path: Path) -> None:
    # a configure (load, warm-up on a blank image) and the first frames (eager, then the graph's
    # capture) must not reserve device memory they give back later: a robot sharing its memory
    # needs the peak, not the steady state, to fit. Before, the warm-up's activations and its
    # 640x640 image took segments of their own, freed after the capture: 18 MB (this test) and
    # 22 MB (the benchmark's children) above the steady state on a lent H100, yolo11n fp16
    from yolo_jetson_ros.pipeline.detector import build_detector, DetectorConfig
    torch.cuda.synchronize()
    torch.cuda.empty_cache()  # what earlier tests left cached would hide a new segment
    torch.cuda.reset_peak_memory_stats()
    detector = build_detector(DetectorConfig(
        model=str(yolo11n_pt), backend='torch', device='cuda:0', precision='fp16', imgsz=640,
        cache_dir=str(tmp_path)))
    pipe = detector.backend.pipeline
    assert pipe is not None
    try:
        for _ in range(pipe.capture_after + 3):
            dets = detector.detect(sample_images['bus.jpg'])
        torch.cuda.synchronize()
        assert pipe.graph_replays >= 1 and len(dets.scores) > 0
        transient = torch.cuda.max_memory_reserved() - torch.cuda.memory_reserved()
        assert transient <= 2 * 2**20, f'{transient / 2**20:.0f} MB held only for a while'
    finally:
        detector.close()


@needs_cuda
def test_cuda_configure_cleanup_cycles_keep_device_memory_flat(
        yolo11n_pt: Path, sample_images: Dict[str, np.ndarray]) -> None:
    # every configure builds a backend and every cleanup closes it: nothing may pile up on the
    # device. A stream created per configure and destroyed per cleanup grew device memory by
    # 32 MB per cycle on a lent H100 (this test failed then).
    from yolo_jetson_ros.pipeline.backends.torch_backend import TorchBackend
    image = sample_images['bus.jpg']
    reserved = []
    for _ in range(4):
        backend = TorchBackend(yolo11n_pt, 'cuda:0', half=True)
        pipe = backend.pipeline
        assert pipe is not None
        for _ in range(4):
            rows = pipe.detect([image], [True], NmsSettings())[0]
        assert pipe.graph_replays >= 1 and len(rows) > 0
        with pytest.raises(RuntimeError, match='before any graph capture'):
            with pipe.persistent():  # a replay could overwrite anything allocated now
                pass
        backend.close()
        torch.cuda.synchronize()
        reserved.append(torch.cuda.memory_reserved())
    assert max(reserved[1:]) <= reserved[0], [r / 2**20 for r in reserved]
