# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Benchmark every backend/precision this machine offers: accuracy, latency, memory, cameras.

``python -m yolo_jetson_ros.benchmark`` (console script ``benchmark``). For each backend the
table has Ultralytics' Jetson-guide columns (format, size on disk, mAP50-95, inference ms/image)
plus our preprocessing / postprocessing / end-to-end ms (uint8 image in, detections out), the
in-node latency (sensor_msgs/Image 640x480 bgr8 published -> Detection2DArray received, in one
rclpy process) and sustained fps. In the same run, as references: Ultralytics
``YOLO(weights).predict`` end to end, and the bare model forward (eager and CUDA-graph replay on
a GPU, bare ``session.run`` for onnxruntime), so every figure is also a ratio. Each backend is
measured in a fresh child process, and peak memory of our pipeline and of Ultralytics' predict in
further child processes. Results go to ``--out``: ``benchmark.json``, ``benchmark.md`` and
``benchmark.png``.
"""

import argparse
import contextlib
import importlib.util
import json
import os
from pathlib import Path
import platform
import resource
import shutil
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

os.environ.setdefault('YOLO_OFFLINE', '1')

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO.parent / 'shared' / 'models' / 'yolo11n_coco128.pt'
DEFAULT_DATA = REPO.parent / 'shared' / 'data' / 'coco128' / 'coco128.yaml'
FRAME_HW = (480, 640)
STAMP = struct.Struct('<iI')  # std_msgs/Header.stamp at the start of a CDR payload

# spec -> (backend, device, precision, format)
SPECS: Dict[str, Tuple[str, str, str, str]] = {
    'tensorrt-fp16': ('tensorrt', 'cuda:0', 'fp16', 'TensorRT'),
    'torch-fp16': ('torch', 'cuda:0', 'fp16', 'PyTorch'),
    'torch-fp16-compiled': ('torch', 'cuda:0', 'fp16', 'PyTorch'),
    'torch-fp32': ('torch', 'cuda:0', 'fp32', 'PyTorch'),
    'onnxruntime': ('onnxruntime', 'cpu', 'fp32', 'ONNX'),
    'torch-cpu': ('torch', 'cpu', 'fp32', 'PyTorch'),
}
# specs run with the node's compile_postprocess (decode + NMS compiled by torch.compile)
COMPILED_SPECS = {'torch-fp16-compiled'}


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile of ``values`` (nan when empty)."""
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float('nan')


def summary(values: Sequence[float]) -> Dict[str, float]:
    """Return mean, p50 and p99 of a list of milliseconds."""
    return {'mean': float(np.mean(values)) if len(values) else float('nan'),
            'p50': percentile(values, 50), 'p99': percentile(values, 99), 'n': len(values)}


def available_specs() -> List[str]:
    """Return the backend specs this machine can run."""
    from .pipeline.backends.torch_backend import cuda_available
    from .pipeline.detector import tensorrt_importable
    specs = []
    if cuda_available():
        if tensorrt_importable():
            specs.append('tensorrt-fp16')
        specs += ['torch-fp16', 'torch-fp32']
        if importlib.util.find_spec('triton') is not None:
            specs.append('torch-fp16-compiled')
    specs.append('onnxruntime')
    return specs


def progress(iterable: Any, desc: str, total: Optional[int] = None) -> Any:
    """Wrap ``iterable`` in a tqdm bar when tqdm is installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr)


def timed(fn: Callable[[], Any], iterations: int, warmup: int, desc: str,
          sync: Callable[[], None] = lambda: None) -> List[float]:
    """Call ``fn`` warmup + iterations times; return the timed milliseconds."""
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in progress(range(iterations), desc):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def timed_pairs(first: Callable[[], Any], second: Callable[[], Any], iterations: int,
                warmup: int, desc: str, sync: Callable[[], None] = lambda: None
                ) -> Tuple[List[float], List[float]]:
    """
    Time ``first`` and ``second`` alternately, each synchronised; return their milliseconds.

    For a ratio of two figures on a machine whose speed drifts within a run (a shared VM's CPU
    varied by tens of percent between runs minutes apart): both see the same drift.
    """
    for _ in range(warmup):
        first()
        second()
    sync()
    out: Tuple[List[float], List[float]] = ([], [])
    for _ in progress(range(iterations), desc):
        for fn, times in ((first, out[0]), (second, out[1])):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
    return out


def cuda_sync(device: str) -> Callable[[], None]:
    """Return a function that synchronises ``device`` (a no-op on the CPU)."""
    if not device.startswith('cuda'):
        return lambda: None
    import torch
    return torch.cuda.synchronize


# ------------------------------------------------------------------------------ data
def load_dataset(data: Path, limit: int = 0) -> Tuple[List[Path], Dict[int, str]]:
    """Return the validation image paths and class names of a YOLO dataset yaml."""
    from ultralytics.data.utils import check_det_dataset
    info = check_det_dataset(str(data), autodownload=False)
    val = info['val']
    paths: List[Path] = []
    for entry in (val if isinstance(val, list) else [val]):
        p = Path(entry)
        if p.is_dir():
            paths += sorted(x for x in p.rglob('*')
                            if x.suffix.lower() in ('.jpg', '.jpeg', '.png'))
        elif p.suffix == '.txt':
            paths += [Path(line.strip()) for line in p.read_text().splitlines() if line.strip()]
    if limit:
        paths = paths[:limit]
    return paths, {int(k): str(v) for k, v in info['names'].items()}


def load_labels(image: Path, hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Return (classes (M,), boxes (M, 4) xyxy pixels) from the YOLO label file of ``image``."""
    from ultralytics.data.utils import img2label_paths
    label = Path(img2label_paths([str(image)])[0])
    if not label.exists():
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    rows = np.loadtxt(label, ndmin=2, dtype=np.float32)
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    h, w = hw
    cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return rows[:, 0].astype(np.int64), boxes


def match_predictions(pred_cls: np.ndarray, true_cls: np.ndarray, iou: np.ndarray,
                      iouv: np.ndarray) -> np.ndarray:
    """
    Return the (N, 10) true-positive matrix as Ultralytics' DetectionValidator (8.4).

    COCO-style greedy matching: the detections, in descending confidence order, each claim the
    best still unclaimed target of their class at every IoU threshold.
    """
    correct = np.zeros((pred_cls.shape[0], iouv.shape[0]), dtype=bool)
    iou = iou * (true_cls[:, None] == pred_cls[None, :])
    matched = np.zeros((iou.shape[0], iouv.shape[0]), dtype=bool)  # targets claimed
    columns = range(iouv.shape[0])
    for j in np.flatnonzero((iou >= iouv.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])
        k = available.argmax(0)
        correct[j] = available[k, columns] >= iouv
        matched[k, columns] |= correct[j]
    return correct


def val_style_load(image: np.ndarray, imgsz: int) -> np.ndarray:
    """Resize the long side to ``imgsz`` as Ultralytics' val dataset loader does."""
    import cv2
    h, w = image.shape[:2]
    r = imgsz / max(h, w)
    if r == 1:
        return image
    size = (min(int(np.ceil(w * r)), imgsz), min(int(np.ceil(h * r)), imgsz))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)


def _val_semantics_detect(detector: Any, image: np.ndarray) -> Any:
    """
    Detect as Ultralytics' val sees the model: image pre-resized, boxes left unclipped.

    The backend's plain forward (``infer``) and the host decode: the model and the NMS, not the
    node's frame path (whose fused device path the GPU tests hold to the host decode).
    """
    from .pipeline.detections import Detections
    from .pipeline.postprocess import decode
    h, w = image.shape[:2]
    small = val_style_load(image, detector.info.input_hw[1])
    geometry = detector.letterboxer.prepare(small)
    raw = detector.backend.infer(detector.letterboxer.input)
    rows = decode(raw[:1], detector.settings, detector.info.end2end)[0]
    boxes = geometry.boxes_to_source(rows[:, :4].copy(), clip=False)
    boxes[:, 0::2] *= w / small.shape[1]
    boxes[:, 1::2] *= h / small.shape[0]
    return Detections(boxes.astype(np.float32), rows[:, 4].astype(np.float32),
                      rows[:, 5].astype(np.int64))


def evaluate_map(detector: Any, images: Sequence[Path],
                 val_semantics: bool = False) -> Dict[str, float]:
    """
    Return mAP50-95 and mAP50 of ``detector`` with Ultralytics' val settings.

    By default through the frame path the node runs (predict's letterbox, boxes clipped to the
    image); ``val_semantics`` loads and scores as Ultralytics' ``val`` does instead (images
    pre-resized with INTER_AREA, boxes unclipped), so the figure compares with its ``val``.
    """
    import cv2
    import torch
    from ultralytics.utils.metrics import ap_per_class, box_iou
    from .pipeline.postprocess import NmsSettings
    saved = detector.settings
    detector.settings = NmsSettings(conf=0.001, iou=0.7, max_det=300, multi_label=True)
    iouv = np.linspace(0.5, 0.95, 10)
    tps, confs, pcls, tcls = [], [], [], []
    try:
        for path in progress(images, 'mAP (val semantics)' if val_semantics else 'mAP'):
            img = cv2.imread(str(path))
            if img is None:
                raise ValueError(f'cannot read dataset image {path} (missing or corrupt)')
            dets = _val_semantics_detect(detector, img) if val_semantics else detector.detect(img)
            true_cls, true_boxes = load_labels(path, img.shape[:2])
            tcls.append(true_cls)
            confs.append(dets.scores)
            pcls.append(dets.class_ids)
            if len(dets) == 0 or len(true_cls) == 0:
                tps.append(np.zeros((len(dets), 10), bool))
                continue
            iou = box_iou(torch.from_numpy(true_boxes), torch.from_numpy(dets.boxes_xyxy)).numpy()
            tps.append(match_predictions(dets.class_ids, true_cls, iou, iouv))
    finally:
        detector.settings = saved
    result = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls),
                          np.concatenate(tcls))
    ap = result[5]
    return {'map50_95': float(ap.mean()) if ap.size else 0.0,
            'map50': float(ap[:, 0].mean()) if ap.size else 0.0, 'images': len(images)}


def val_dataset(images: Sequence[Path], names: Dict[int, str], folder: Path) -> Path:
    """
    Write a dataset for Ultralytics' ``val`` of exactly ``images``; return its yaml.

    The images and their labels are linked into ``folder``, so the label cache ``val`` writes
    beside the labels lands there and never in the (possibly shared, read-only) dataset.
    """
    import yaml
    from ultralytics.data.utils import img2label_paths
    shutil.rmtree(folder / 'images', ignore_errors=True)
    shutil.rmtree(folder / 'labels', ignore_errors=True)
    (folder / 'images').mkdir(parents=True)
    (folder / 'labels').mkdir()
    for image in images:
        (folder / 'images' / image.name).symlink_to(image.resolve())
        label = Path(img2label_paths([str(image)])[0])
        if label.exists():
            (folder / 'labels' / f'{image.stem}.txt').symlink_to(label.resolve())
    data = folder / 'data.yaml'
    data.write_text(yaml.safe_dump({'path': str(folder), 'train': 'images', 'val': 'images',
                                    'names': {int(k): v for k, v in names.items()}}))
    return data


def ultralytics_val(spec: str, args: argparse.Namespace, images: Sequence[Path],
                    names: Dict[int, str]) -> Dict[str, Any]:
    """
    Run Ultralytics' ``val`` on the file the backend runs, same precision, square input.

    The .pt for torch (``rect=False``: the fixed imgsz x imgsz letterbox of the node, not val's
    rectangles), the cached ONNX file for onnxruntime, the engine for TensorRT. The images are
    the ones ours were scored on, linked into a dataset beside the results (:func:`val_dataset`).
    """
    from ultralytics import YOLO
    backend, device, precision, _fmt = SPECS[spec]
    suffix = {'onnxruntime': '.onnx', 'tensorrt': '.engine'}.get(backend)
    weights = cached_artifact(args, suffix) if suffix else Path(args.model)
    if weights is None:
        return {'error': f'no cached {suffix} file for {spec}'}
    folder = Path(args.out) / 'val' / spec
    data = val_dataset(images, names, folder)
    metrics = YOLO(str(weights), task='detect').val(
        data=str(data), imgsz=args.imgsz, batch=1, rect=False, device=device.replace('cuda:', ''),
        half=precision == 'fp16', conf=0.001, iou=0.7, max_det=300, plots=False, verbose=False,
        save_json=False, project=str(folder), name='run', exist_ok=True)
    return {'map50_95': float(metrics.box.map), 'map50': float(metrics.box.map50),
            'images': len(images), 'weights': weights.name}


def make_frames(images: Sequence[Path], count: int = 8) -> List[np.ndarray]:
    """Return ``count`` 640x480 BGR frames (dataset images resized, or noise without data)."""
    import cv2
    frames = []
    for path in list(images)[:count]:
        img = cv2.imread(str(path))
        if img is not None:
            frames.append(cv2.resize(img, (FRAME_HW[1], FRAME_HW[0])))
    rng = np.random.default_rng(0)
    while len(frames) < count:
        frames.append(rng.integers(0, 255, (*FRAME_HW, 3), dtype=np.uint8))
    return frames


# ------------------------------------------------------------------------------ one backend
def build(spec: str, args: argparse.Namespace, batch: int) -> Any:
    """Build the detector for a spec."""
    from .pipeline.detector import build_detector, DetectorConfig
    backend, device, precision, _fmt = SPECS[spec]
    config = DetectorConfig(model=str(args.model), backend=backend, device=device,
                            precision=precision, imgsz=args.imgsz, batch=batch,
                            cache_dir=str(Path(args.out) / 'cache'),
                            compile_postprocess=spec in COMPILED_SPECS)
    return build_detector(config, log=lambda m: print(f'[{spec}] {m}', file=sys.stderr))


def cached_artifact(args: argparse.Namespace, suffix: str) -> Optional[Path]:
    """
    Return the newest cached ``suffix`` file built for this run's imgsz and batch, if any.

    The cache also holds the exports of the multi-camera runs (batch 2, 4): their sidecars
    tell them apart.
    """
    matching = []
    for path in (Path(args.out) / 'cache').rglob(f'*{suffix}'):
        try:
            key = json.loads(Path(f'{path}.json').read_text()).get('key', {})
        except (OSError, ValueError):
            continue
        if key.get('batch') == args.batch and key.get('imgsz') == args.imgsz:
            matching.append(path)
    return max(matching, key=lambda p: p.stat().st_mtime) if matching else None


def artifact_size_mb(spec: str, args: argparse.Namespace) -> float:
    """Return the size of the file the backend runs (.pt, cached .onnx or .engine)."""
    suffix = {'onnxruntime': '.onnx', 'tensorrt': '.engine'}.get(SPECS[spec][0])
    if suffix is None:
        return Path(args.model).stat().st_size / 1e6
    path = cached_artifact(args, suffix)
    return path.stat().st_size / 1e6 if path is not None else float('nan')


def bare_forward(detector: Any, iterations: int, warmup: int,
                 frame: Optional[Callable[[], Any]] = None
                 ) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """
    Time the model alone on a prepared input: eager, CUDA graph, or session.run.

    Returns ``(bare, interleaved)``. With ``frame`` (one pipeline frame), ``interleaved`` holds
    the pipeline and the bare model's headline form (CUDA graph, session.run, engine execute,
    else eager) timed once more, alternately (:func:`timed_pairs`); else it is None.

    On CUDA the eager runs, the capture and the replays use the pipeline's own stream, as the
    pipeline does. An eager forward of the model on any other stream (the default stream, or a
    side stream for the capture) made every CUDA graph of the process slower for good on a lent
    H100: the bare graph 1.00 -> 1.08 ms, the pipeline's 1.22 -> 1.39 ms (yolo11n fp16; the
    kernels took as long as before, the gaps between them grew; cause not found).
    """
    backend = detector.backend
    out: Dict[str, Any] = {}
    pairs: Dict[str, Any] = {}

    def interleave(key: str, bare: Callable[[], Any], sync: Callable[[], None]) -> None:
        if frame is not None:
            ours, model = timed_pairs(frame, bare, iterations, warmup, f'pipeline | {key}', sync)
            pairs.update(bare=key, pipeline_e2e_ms=summary(ours), bare_ms=summary(model))

    if backend.name == 'onnxruntime':
        session = backend.session
        feed = {session.get_inputs()[0].name: detector.letterboxer.input}

        def run() -> Any:
            return session.run(None, feed)

        out['session_run'] = summary(timed(run, iterations, warmup, 'session.run'))
        interleave('session_run', run, lambda: None)
        return out, pairs or None
    if backend.name == 'torch':
        import torch
        sync = cuda_sync(backend.device)
        pipe = getattr(backend, 'pipeline', None)
        on_stream = pipe.on_stream() if pipe is not None else contextlib.nullcontext()
        with torch.inference_mode(), on_stream:
            x = torch.zeros((detector.info.batch, 3, *detector.info.input_hw),
                            dtype=backend._dtype, device=backend.device)
            out['eager'] = summary(timed(lambda: backend.forward(x), iterations, warmup,
                                         'forward', sync))
            if pipe is None or pipe.stream is None:
                interleave('eager', lambda: backend.forward(x), sync)
                return out, pairs or None
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=pipe.stream):
                backend.forward(x)
            out['cuda_graph'] = summary(timed(graph.replay, iterations, warmup, 'graph', sync))
            # the pipeline's frames enter and leave its stream themselves
            interleave('cuda_graph', graph.replay, sync)
            del graph
    elif backend.name == 'tensorrt' and hasattr(backend, 'execute_only'):
        out['execute'] = summary(timed(backend.execute_only, iterations, warmup, 'trt',
                                       cuda_sync('cuda')))
        interleave('execute', backend.execute_only, cuda_sync('cuda'))
    return out, pairs or None


def fused_breakdown(detector: Any, frames: Sequence[np.ndarray], iterations: int,
                    warmup: int) -> Optional[Dict[str, Any]]:
    """Eager, synchronised per-stage times of the fused GPU path (upload+letterbox, NMS)."""
    pipe = getattr(detector.backend, 'pipeline', None)
    if pipe is None:
        return None
    import torch
    sync = torch.cuda.synchronize
    n = detector.info.batch
    batch = [frames[i % len(frames)] for i in range(n)]
    with torch.inference_mode(), pipe.on_stream():  # the stream the pipeline itself uses
        pipe._update_settings(detector.settings)
        slots = pipe.preprocess(batch)

        def pre() -> None:  # the pipeline's own letterbox and decode (cuda kernels or torch's)
            slots_ = pipe.preprocess(batch)
            for i, slot in enumerate(slots_):
                pipe.letterbox(i, slot, True)

        raw = pipe.forward(pipe.input)

        def post() -> None:
            pipe.decode(raw, n).cpu()

        del slots
        return {'preprocess': summary(timed(pre, iterations, warmup, 'gpu pre', sync)),
                'postprocess': summary(timed(post, iterations, warmup, 'gpu post', sync))}


def ultralytics_predict(spec: str, args: argparse.Namespace, frames: Sequence[np.ndarray],
                        iterations: int, warmup: int) -> Optional[Dict[str, Any]]:
    """Time ``YOLO(weights).predict`` end to end on the same frames, same precision/device."""
    backend, device, precision, _fmt = SPECS[spec]
    if backend == 'tensorrt':
        return None
    from ultralytics import YOLO
    weights = str(args.model)
    if backend == 'onnxruntime':  # the same ONNX file ours runs
        onnx = cached_artifact(args, '.onnx')
        if onnx is None:
            return None
        weights = str(onnx)
    model = YOLO(weights, task='detect')
    dev = 0 if device.startswith('cuda') else 'cpu'
    state = {'i': 0}

    def once() -> None:
        frame = frames[state['i'] % len(frames)]
        state['i'] += 1
        model.predict(frame, half=precision == 'fp16', device=dev, imgsz=args.imgsz,
                      rect=False, verbose=False, conf=0.25, iou=0.7)

    return summary(timed(once, iterations, warmup, 'ultralytics', cuda_sync(device)))


# ------------------------------------------------------------------------------ the node
def node_benchmark(spec: str, args: argparse.Namespace, frames: Sequence[np.ndarray],
                   cameras: int, duration_s: float, paced_hz: float) -> Dict[str, Any]:
    """
    Run the YoloDetectorNode and a publisher/subscriber node in one rclpy process.

    ``paced_hz == 0``: one camera, closed loop (publish, wait for the detections, repeat):
    latency p50/p99 and sustained fps, measured twice. First with Python messages at both ends
    of the harness (rclpy converts the Image to C before publishing, and the Detection2DArray
    back to Python objects on receipt: ~0.4 ms for 10 detections on the 2-core VM), then with
    serialized ends, as a C++ camera driver and a C++ consumer would see the node: the frames
    are published pre-serialized and the detections taken serialized (``raw=True``), the stamp
    read from the bytes. Else every camera publishes Python messages at ``paced_hz``.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data, QoSProfile
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray
    from .node.detector_node import YoloDetectorNode
    backend, device, precision, _fmt = SPECS[spec]
    topics = ['image'] if cameras == 1 else [f'cam{i}/image' for i in range(cameras)]
    outputs = (['detections_output'] if cameras == 1
               else [f'{t}/detections' for t in topics])
    context = Context()
    rclpy.init(context=context)
    params = [Parameter('model', value=str(args.model)), Parameter('backend', value=backend),
              Parameter('device', value=device), Parameter('precision', value=precision),
              Parameter('imgsz', value=args.imgsz), Parameter('batch', value=cameras),
              Parameter('image_topics', value=topics),
              Parameter('engine_cache_dir', value=str(Path(args.out) / 'cache')),
              Parameter('compile_postprocess', value=spec in COMPILED_SPECS)]
    detector_node = YoloDetectorNode(context=context, parameter_overrides=params)
    io = Node('bench_io', context=context)
    sent: Dict[Tuple[int, int], float] = {}
    latencies: List[float] = []
    received = [0] * cameras
    got = threading.Event()
    lock = threading.Lock()

    def on_result(cam: int, sec: int, nanosec: int) -> None:
        now = time.perf_counter()
        with lock:
            t = sent.pop((cam, sec * 1000000 + nanosec), None)
            if t is not None:
                latencies.append((now - t) * 1e3)
                received[cam] += 1
        got.set()

    def on_dets(cam: int, msg: Any) -> None:
        on_result(cam, msg.header.stamp.sec, msg.header.stamp.nanosec)

    def on_serialized_dets(cam: int, data: bytes) -> None:
        on_result(cam, *STAMP.unpack_from(data, 4))  # after the 4-byte CDR encapsulation

    def subscribe(serialized: bool) -> List[Any]:
        return [io.create_subscription(Detection2DArray, o, (
            (lambda m, c=c: on_serialized_dets(c, m)) if serialized
            else (lambda m, c=c: on_dets(c, m))), 10, raw=serialized)
            for c, o in enumerate(outputs)]

    pubs = [io.create_publisher(Image, t, QoSProfile(depth=1, reliability=qos_profile_sensor_data
                                                     .reliability))
            for t in topics]
    subs = subscribe(False)
    # as detector_node.main() runs it: one executor thread; inference runs in the node's worker
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(detector_node)
    executor.add_node(io)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    result: Dict[str, Any] = {'cameras': cameras}
    try:
        from lifecycle_msgs.msg import State  # noqa: F401 (the lifecycle interfaces are there)
        ok = detector_node.trigger_configure()
        ok = detector_node.trigger_activate()
        del ok
        msgs = []
        for frame in frames:
            m = Image(height=FRAME_HW[0], width=FRAME_HW[1], encoding='bgr8', is_bigendian=0,
                      step=FRAME_HW[1] * 3)
            m.header.frame_id = 'bench_camera_optical'  # as a camera driver sets it
            m.data = frame.tobytes()
            msgs.append(m)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and any(
                io.count_subscribers(t) == 0 for t in topics):  # discovery
            time.sleep(0.05)
        wires = [bytearray(serialize_message(m)) for m in msgs]
        seq = 0

        def publish(cam: int, serialized: bool = False) -> None:
            nonlocal seq
            seq += 1
            sec, nanosec = seq // 1000000, seq % 1000000
            data: Any
            if serialized:
                wire = wires[seq % len(wires)]
                STAMP.pack_into(wire, 4, sec, nanosec)
                data = bytes(wire)
            else:
                data = msgs[seq % len(msgs)]
                data.header.stamp.sec, data.header.stamp.nanosec = sec, nanosec
            with lock:
                sent[(cam, seq)] = time.perf_counter()
            pubs[cam].publish(data)

        def closed_loop(serialized: bool) -> Dict[str, Any]:
            for _ in range(args.warmup):  # warm-up (graph capture happens here)
                got.clear()
                publish(0, serialized)
                got.wait(2.0)
            with lock:
                latencies.clear()
                received[0] = 0
                sent.clear()
            t0 = time.perf_counter()
            misses = 0
            out: Dict[str, Any] = {}
            ends = 'serialized' if serialized else 'messages'
            for _ in progress(range(args.iterations), f'node {spec} ({ends})'):
                got.clear()
                publish(0, serialized)
                misses = 0 if got.wait(2.0) else misses + 1
                if misses >= 5:  # the graph lost the frames: report what arrived, stop
                    out['aborted'] = 'five frames in a row got no detections within 2 s'
                    break
            elapsed = time.perf_counter() - t0
            out.update(latency_ms=summary(latencies), fps=received[0] / elapsed,
                       received=received[0], published=args.iterations)
            return out

        if paced_hz <= 0:
            result.update(closed_loop(False))
            for sub in subs:
                io.destroy_subscription(sub)
            subs = subscribe(True)  # matched while closed_loop's warm-up frames run
            result['serialized_ends'] = closed_loop(True)
        else:
            period = 1.0 / paced_hz
            warm_end = time.perf_counter() + 1.0
            t_next = time.perf_counter()
            measuring = False
            at_start: Dict[str, int] = {}
            t0 = 0.0
            published = 0
            end = warm_end + duration_s
            while True:
                now = time.perf_counter()
                if now >= end:
                    break
                if not measuring and now >= warm_end:
                    with lock:  # answers to warm-up frames are not counted
                        latencies.clear()
                        sent.clear()
                        for c in range(cameras):
                            received[c] = 0
                    measuring, t0 = True, now
                    at_start = detector_node.counters.as_dict()
                for c in range(cameras):
                    publish(c)
                    published += measuring
                t_next += period
                time.sleep(max(0.0, t_next - time.perf_counter()))
            # fps over the publishing time: frames offered in it, answered during and just after
            elapsed = time.perf_counter() - t0
            time.sleep(0.3)
            with lock:
                answered = sum(received)
            at_end = detector_node.counters.as_dict()
            # the measured window only, not the warm-up
            result['node_counters_measured'] = {
                k: at_end.get(k, 0) - at_start.get(k, 0)
                for k in ('received', 'processed', 'dropped')}
            result.update(latency_ms=summary(latencies),
                          fps_total=answered / elapsed,
                          fps_per_camera=[r / elapsed for r in received],
                          published=published, received=answered,
                          answered_fraction=answered / max(published, 1),
                          offered_fps_per_camera=paced_hz)
    finally:
        snap = detector_node.counters.snapshot()
        # frame taken -> detections published inside the node: its own cost, not the transport
        internal = detector_node.counters.latency.percentiles(50, 99)
        result['node_internal_ms'] = {'p50': internal[0], 'p99': internal[1]}
        waits = detector_node.counters.queue_wait.percentiles(50, 99)
        result['node_queue_wait_ms'] = {'p50': waits[0], 'p99': waits[1]}
        result['node_counters'] = {k: getattr(snap, k) for k in (
            'received', 'processed', 'dropped', 'bad_input', 'inference_errors', 'last_error')}
        detector_node.stop()
        executor.shutdown()
        detector_node.destroy_node()
        io.destroy_node()
        rclpy.try_shutdown(context=context)
        del subs
    return result


# ------------------------------------------------------------------------------ memory
def memory_child(args: argparse.Namespace) -> None:
    """Child process: run ours or Ultralytics for a while, print peak memory as JSON."""
    spec, which = args.memory_child.split(':')
    backend, device, precision, _fmt = SPECS[spec]
    # the frames the latency runs use (saved by the parent: no dataset code in this process)
    frames = (list(np.load(args.memory_frames)) if args.memory_frames
              else make_frames([], 4))
    torch = None
    context_used = 0.0
    if device.startswith('cuda'):
        import torch
        torch.zeros(1, device=device)  # a bare CUDA context: the baseline of this process
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
        context_used = total - free
        torch.cuda.reset_peak_memory_stats()
    if which == 'ours':
        detector = build(spec, args, 1)
        for i in range(args.iterations):
            detector.detect(frames[i % len(frames)])
    else:
        if ultralytics_predict(spec, args, frames, args.iterations, 2) is None:
            print(json.dumps({}))
            return
    out = {'peak_rss_mb': peak_rss_mb()}
    if torch is not None:
        free, total = torch.cuda.mem_get_info()
        out['gpu_max_allocated_mb'] = torch.cuda.max_memory_allocated() / 2**20
        out['gpu_reserved_mb'] = torch.cuda.memory_reserved() / 2**20
        out['gpu_max_reserved_mb'] = torch.cuda.max_memory_reserved() / 2**20
        out['gpu_device_used_mb'] = (total - free) / 2**20
        # the device's used memory counts every process on it (the benchmark's parent too):
        # what this process added over its bare CUDA context compares ours with Ultralytics
        out['gpu_added_over_context_mb'] = (total - free - context_used) / 2**20
        # the peak: what lies outside torch's allocator (kernels, library handles: loaded once,
        # never unloaded, so the end value is its peak) plus the allocator's peak reservation.
        # The end value alone misses segments a warm-up held and gave back.
        outside = total - free - context_used - torch.cuda.memory_reserved()
        out['gpu_peak_over_context_mb'] = (outside + torch.cuda.max_memory_reserved()) / 2**20
    print('MEMORY ' + json.dumps(out))


def peak_rss_mb() -> float:
    """Return this process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss)."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_memory_frames(frames: Sequence[np.ndarray], out: Path) -> Path:
    """Save (up to 4 of) ``frames`` for the memory children, once per run; return the file."""
    frames_file = out / 'memory_frames.npy'
    frames_file.parent.mkdir(parents=True, exist_ok=True)
    np.save(frames_file, np.stack(list(frames)[:4]))
    return frames_file


def measure_memory(spec: str, args: argparse.Namespace, which: str,
                   frames_file: Path) -> Dict[str, Any]:
    """Run :func:`memory_child` in a fresh interpreter on :func:`save_memory_frames`' file."""
    cmd = [sys.executable, '-m', 'yolo_jetson_ros.benchmark', '--memory-child', f'{spec}:{which}',
           '--model', str(args.model), '--imgsz', str(args.imgsz), '--out', str(args.out),
           '--memory-frames', str(frames_file), '--iterations', str(max(args.iterations // 2, 5))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith('MEMORY '):
            return json.loads(line[7:])
    return {'error': (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']}


# ------------------------------------------------------------------------------ per backend
def measure_memories(specs: Sequence[str], args: argparse.Namespace,
                     frames_file: Path) -> Dict[str, Dict[str, Any]]:
    """
    Run every spec's memory children (ours, then Ultralytics) before anything else of the run.

    The children read device memory as the whole device's, so this process must hold still
    meanwhile, and it does while it has no CUDA context. Run after the latency runs, as before,
    our child read 114 MB added over its context where the same child alone, or beside an idle
    process holding a CUDA context, read 146 (fp16, a lent H100), presumably because this
    process gave memory back during the child's run. Our child also exports the ONNX file the
    rest of the run uses.
    """
    memories: Dict[str, Dict[str, Any]] = {}
    for spec in specs:
        memories[spec] = {'ours': measure_memory(spec, args, 'ours', frames_file)}
        if not args.skip_ultralytics:
            memories[spec]['ultralytics'] = measure_memory(spec, args, 'ultralytics',
                                                           frames_file)
    return memories


def run_spec(spec: str, args: argparse.Namespace, images: Sequence[Path],
             frames: Sequence[np.ndarray], names: Optional[Dict[int, str]] = None
             ) -> Dict[str, Any]:
    """
    Measure one backend spec; return its JSON record (:func:`main` adds the memory children's).

    ``names``: the dataset's classes (for ``val``).
    The order matters on CUDA (see :func:`bare_forward`): our timings first, then the node,
    then mAP (its own detector), and Ultralytics last, whose eager model runs on the default
    stream. :func:`main` runs each spec in a fresh process for the same reason.
    """
    backend, device, precision, fmt = SPECS[spec]
    rec: Dict[str, Any] = {'spec': spec, 'format': fmt, 'backend': backend, 'device': device,
                           'precision': precision}
    detector = build(spec, args, args.batch)
    rec['describe'] = detector.backend.describe()
    rec['size_mb'] = artifact_size_mb(spec, args)
    n = detector.info.batch
    state = {'i': 0}
    pre, inf, post = [], [], []

    def once() -> None:
        i = state['i']
        state['i'] += 1
        detector.detect_batch([frames[(i + j) % len(frames)] for j in range(n)])
        pre.append(detector.times.preprocess_ms)
        inf.append(detector.times.inference_ms)
        post.append(detector.times.postprocess_ms)

    e2e = timed(once, args.iterations, args.warmup, f'pipeline {spec}')
    k = args.warmup
    rec['pipeline'] = {'e2e_ms': summary(e2e), 'preprocess_ms': summary(pre[k:]),
                       'inference_ms': summary(inf[k:]), 'postprocess_ms': summary(post[k:]),
                       'fused': detector.backend.has_fused_path}
    pipe = getattr(detector.backend, 'pipeline', None)
    if pipe is not None:
        rec['pipeline'].update(graph_replays=pipe.graph_replays, exact_redos=pipe.exact_redos,
                               max_candidates=pipe.max_candidates)
    breakdown = fused_breakdown(detector, frames, args.iterations, args.warmup)
    if breakdown:
        rec['pipeline']['device_breakdown_ms'] = breakdown
    rec['bare'], pairs = bare_forward(
        detector, args.iterations, args.warmup,
        lambda: detector.detect_batch([frames[j % len(frames)] for j in range(n)]))
    if pairs:
        rec['interleaved'] = pairs
    detector.close()
    if not args.skip_node:
        try:
            rec['node'] = node_benchmark(spec, args, frames, 1, 0.0, 0.0)
            rec['cameras'] = [node_benchmark(spec, args, frames, c, args.camera_seconds, 30.0)
                              for c in args.cameras]
        except Exception as exc:
            rec['node_error'] = f'{type(exc).__name__}: {exc}'
    if not args.skip_map and images:
        detector = build(spec, args, args.batch)
        try:
            rec['map'] = evaluate_map(detector, images)
            rec['map_val'] = {'ours': evaluate_map(detector, images, val_semantics=True)}
        finally:
            detector.close()
    if not args.skip_ultralytics:
        try:
            rec['ultralytics_ms'] = ultralytics_predict(spec, args, frames, args.iterations,
                                                        args.warmup)
        except Exception as exc:  # a reference failing must not lose the rest
            rec['ultralytics_error'] = f'{type(exc).__name__}: {exc}'
    if 'map_val' in rec and not args.skip_ultralytics:
        val = rec['map_val']
        try:
            val['ultralytics'] = ultralytics_val(spec, args, images, names or {})
            val['ours_minus_ultralytics'] = (val['ours']['map50_95']
                                             - val['ultralytics']['map50_95'])
        except Exception as exc:
            val['ultralytics'] = {'error': f'{type(exc).__name__}: {exc}'}
    rec['ratios'] = ratios(rec)
    return rec


def run_spec_in_child(spec: str, argv: Sequence[str], out: Path) -> Dict[str, Any]:
    """
    Run :func:`run_spec` for ``spec`` in a fresh interpreter (the same options); return its record.

    CUDA state one measurement leaves behind (see :func:`bare_forward`) must not reach the
    next backend's.
    """
    result = out / f'record-{spec}.json'
    result.unlink(missing_ok=True)
    cmd = [sys.executable, '-m', 'yolo_jetson_ros.benchmark', *argv, '--backends', spec,
           '--skip-memory', '--spec-child', str(result)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not result.exists():
        return {'spec': spec, 'error': f'the child process for {spec} exited with '
                                       f'{proc.returncode}: {proc.stdout.strip()[-400:]}'}
    return json.loads(result.read_text())


def ratios(rec: Dict[str, Any]) -> Dict[str, float]:
    """Return the headline ratios of a record (p50 based)."""
    out: Dict[str, float] = {}
    e2e = rec['pipeline']['e2e_ms']['p50']
    bare = rec.get('bare', {})
    for key in ('cuda_graph', 'eager', 'session_run', 'execute'):
        if key in bare:
            out[f'pipeline_over_bare_{key}'] = e2e / bare[key]['p50']
    pairs = rec.get('interleaved')
    if pairs:  # the same ratio, both timed alternately
        out['pipeline_over_bare_interleaved'] = (pairs['pipeline_e2e_ms']['p50']
                                                 / pairs['bare_ms']['p50'])
    ul = rec.get('ultralytics_ms')
    if ul:
        out['ultralytics_over_pipeline'] = ul['p50'] / e2e
    node = rec.get('node')
    if node:
        out['node_p50_minus_pipeline_ms'] = node['latency_ms']['p50'] - e2e
        out['node_over_pipeline'] = node['latency_ms']['p50'] / e2e
        serialized = (node.get('serialized_ends') or {}).get('latency_ms')
        if serialized and serialized.get('n'):
            out['node_serialized_ends_p50_minus_pipeline_ms'] = serialized['p50'] - e2e
    return out


# ------------------------------------------------------------------------------ reports
def environment() -> Dict[str, Any]:
    """Return versions and the machine for the report."""
    import importlib.metadata as md
    env: Dict[str, Any] = {'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                           'python': platform.python_version(), 'machine': platform.machine(),
                           'cpu_count': os.cpu_count(), 'command': ' '.join(sys.argv)}
    for pkg in ('torch', 'torchvision', 'onnxruntime', 'ultralytics', 'numpy',
                'opencv-python', 'tensorrt'):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        import torch
        if torch.cuda.is_available():
            env['gpu'] = torch.cuda.get_device_name(0)
            env['cuda'] = torch.version.cuda
    except ImportError:
        pass
    return env


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return '-'
    return f'{value:.{digits}f}'


def markdown(report: Dict[str, Any]) -> str:
    """Render the report as markdown tables."""
    env = report['environment']
    lines = [f"# Benchmark ({env['date']})", '',
             ', '.join(f'{k} {v}' for k, v in env.items() if k not in ('date', 'command')), '',
             'Command: `' + env['command'] + '`', '',
             f"Model `{report['model']}`, imgsz {report['imgsz']}, batch {report['batch']}, "
             f'frames {FRAME_HW[1]}x{FRAME_HW[0]} bgr8; p50 values in ms.', '',
             '| Format | Backend | Size (MB) | mAP50-95 | Inference ms/im | Pre ms | Post ms '
             '| Pipeline e2e ms | Bare forward ms | Ultralytics predict ms | Node p50 / p99 ms '
             '| Node p50 / p99 ms, serialized ends | Node fps |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for rec in report['results']:
        if 'error' in rec:
            lines.append(f"| {rec['spec']} | error: {rec['error']} |")
            continue
        p = rec['pipeline']
        bare = rec.get('bare', {})
        bare_txt = ', '.join(f"{k} {_f(v['p50'])}" for k, v in bare.items())
        node = rec.get('node') or {}
        lat = node.get('latency_ms', {})
        lat_serialized = (node.get('serialized_ends') or {}).get('latency_ms', {})
        ul = rec.get('ultralytics_ms') or {}
        lines.append(
            f"| {rec['format']} | {rec['spec']} | {_f(rec['size_mb'], 1)} | "
            f"{_f(rec.get('map', {}).get('map50_95'), 4)} | {_f(p['inference_ms']['p50'])} | "
            f"{_f(p['preprocess_ms']['p50'])} | {_f(p['postprocess_ms']['p50'])} | "
            f"{_f(p['e2e_ms']['p50'])} | {bare_txt or '-'} | {_f(ul.get('p50'))} | "
            f"{_f(lat.get('p50'))} / {_f(lat.get('p99'))} | "
            f"{_f(lat_serialized.get('p50'))} / {_f(lat_serialized.get('p99'))} | "
            f"{_f(node.get('fps'), 1)} |")
    lines += ['', "## mAP50-95 against Ultralytics' val (the same file and precision)", '',
              "Ours with val's semantics (images pre-resized with INTER_AREA, boxes unclipped) "
              "against `val` itself; deployed is the node's frame path (predict's letterbox, "
              'boxes clipped to the image).', '',
              '| Backend | ours, deployed | ours, val semantics | Ultralytics val | '
              'difference | images |', '| --- | --- | --- | --- | --- | --- |']
    for rec in report['results']:
        val = rec.get('map_val')
        if not val:
            continue
        ours, ul = val.get('ours', {}), val.get('ultralytics', {})
        diff = val.get('ours_minus_ultralytics')
        lines.append(f"| {rec['spec']} | {_f(rec.get('map', {}).get('map50_95'), 4)} | "
                     f"{_f(ours.get('map50_95'), 4)} | "
                     f"{_f(ul.get('map50_95'), 4) if 'error' not in ul else ul['error']} | "
                     f"{'-' if diff is None else f'{diff:+.4f}'} | {ours.get('images', '')} |")
    lines += ['', '## Ratios (p50)', '']
    for rec in report['results']:
        if rec.get('ratios'):
            pairs = ', '.join(f'{k} {v:.2f}' for k, v in rec['ratios'].items())
            lines.append(f"- {rec['spec']}: {pairs}")
    lines += ['', '## Cameras through the node (30 fps each offered, batch = cameras)', '',
              '| Backend | Cameras | fps total | fps per camera | answered | dropped in node '
              '| latency p50 / p99 ms |',
              '| --- | --- | --- | --- | --- | --- | --- |']
    for rec in report['results']:
        for cam in rec.get('cameras', []):
            lat = cam['latency_ms']
            per = ', '.join(_f(v, 1) for v in cam['fps_per_camera'])
            lines.append(f"| {rec['spec']} | {cam['cameras']} | {_f(cam['fps_total'], 1)} | "
                         f"{per} | {cam.get('received', 0)}/{cam.get('published', 0)} | "
                         f"{cam.get('node_counters_measured', {}).get('dropped', '')} | "
                         f"{_f(lat['p50'])} / {_f(lat['p99'])} |")
    lines += ['', '## Peak memory (separate child processes)', '',
              '| Backend | Who | Peak RSS MB | GPU max allocated MB | GPU used over a bare CUDA '
              'context MB, end / peak | GPU device used MB (all processes) |',
              '| --- | --- | --- | --- | --- | --- |']
    for rec in report['results']:
        for who, mem in (rec.get('memory') or {}).items():
            lines.append(f"| {rec['spec']} | {who} | {_f(mem.get('peak_rss_mb'), 0)} | "
                         f"{_f(mem.get('gpu_max_allocated_mb'), 0)} | "
                         f"{_f(mem.get('gpu_added_over_context_mb'), 0)} / "
                         f"{_f(mem.get('gpu_peak_over_context_mb'), 0)} | "
                         f"{_f(mem.get('gpu_device_used_mb'), 0)} |")
    return '\n'.join(lines) + '\n'


def plot(report: Dict[str, Any], path: Path) -> bool:
    """Draw the latency breakdown per backend; return False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    recs = [r for r in report['results'] if 'pipeline' in r]
    if not recs:
        return False
    names = [r['spec'] for r in recs]
    x = np.arange(len(recs))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(recs)), 4.5))
    bottom = np.zeros(len(recs))
    for key, label in (('preprocess_ms', 'pre'), ('inference_ms', 'inference'),
                       ('postprocess_ms', 'post')):
        vals = np.array([r['pipeline'][key]['p50'] for r in recs])
        ax.bar(x - 0.3, vals, 0.2, bottom=bottom, label=f'ours: {label}')
        bottom += vals
    ax.bar(x - 0.1, [r['pipeline']['e2e_ms']['p50'] for r in recs], 0.2, label='ours: e2e')
    ax.bar(x + 0.1, [(r.get('node') or {}).get('latency_ms', {}).get('p50', 0) for r in recs],
           0.2, label='in node p50')
    ax.bar(x + 0.3, [(r.get('ultralytics_ms') or {}).get('p50', 0) for r in recs], 0.2,
           label='Ultralytics predict')
    ax.set_xticks(x, names)
    ax.set_ylabel('ms per image (p50)')
    ax.set_title(f"{Path(report['model']).name} {report['imgsz']} batch {report['batch']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(prog='benchmark', description=__doc__.split('\n')[0])
    p.add_argument('--model', default=str(DEFAULT_MODEL), help='.pt weights (default %(default)s)')
    p.add_argument('--imgsz', type=int, default=640)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--data', default=str(DEFAULT_DATA), help='YOLO dataset yaml for mAP')
    p.add_argument('--data-limit', type=int, default=0, help='use the first N images only')
    p.add_argument('--iterations', type=int, default=200)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--backends', default='auto',
                   help=f"comma list of {', '.join(SPECS)} or auto (all available)")
    p.add_argument('--out', default='bench_output')
    p.add_argument('--skip-map', action='store_true')
    p.add_argument('--skip-node', action='store_true')
    p.add_argument('--skip-memory', action='store_true')
    p.add_argument('--skip-ultralytics', action='store_true')
    p.add_argument('--cameras', default='1,2,4', help='camera counts for the node test')
    p.add_argument('--camera-seconds', type=float, default=5.0)
    p.add_argument('--switch-interval-ms', type=float, default=0.0,
                   help="Python's GIL switch interval for the run (0 = leave the default 5 ms)")
    p.add_argument('--memory-child', default='', help=argparse.SUPPRESS)
    p.add_argument('--spec-child', default='', help=argparse.SUPPRESS)
    p.add_argument('--memory-frames', default='', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.cameras = [int(c) for c in str(args.cameras).split(',') if c.strip()]
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark (console script ``benchmark``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1e3)
    if args.memory_child:
        memory_child(args)
        return 0
    specs = available_specs() if args.backends == 'auto' else [
        s.strip() for s in args.backends.split(',') if s.strip()]
    unknown = [s for s in specs if s not in SPECS]
    if unknown:
        print(f'unknown backends {unknown}; choose from {list(SPECS)}', file=sys.stderr)
        return 2
    images: List[Path] = []
    names: Dict[int, str] = {}
    if Path(args.data).exists():
        images, names = load_dataset(Path(args.data), args.data_limit)
    elif not args.skip_map:
        print(f'no dataset at {args.data}: skipping mAP', file=sys.stderr)
    frames = make_frames(images)
    if args.spec_child:  # one spec, in this fresh process (run_spec_in_child)
        try:
            rec = run_spec(specs[0], args, images, frames, names)
        except Exception as exc:  # one backend failing must not lose the others
            rec = {'spec': specs[0], 'error': f'{type(exc).__name__}: {exc}'}
        Path(args.spec_child).write_text(json.dumps(rec, default=float))
        return 0
    memories: Dict[str, Dict[str, Any]] = {}
    if not args.skip_memory:
        print('=== memory children', file=sys.stderr)
        memories = measure_memories(specs, args, save_memory_frames(frames, Path(args.out)))
    report: Dict[str, Any] = {'environment': environment(), 'model': str(args.model),
                              'imgsz': args.imgsz, 'batch': args.batch,
                              'iterations': args.iterations, 'warmup': args.warmup,
                              'data': str(args.data), 'results': []}
    for spec in specs:
        print(f'=== {spec}', file=sys.stderr)
        rec = run_spec_in_child(spec, argv, Path(args.out))
        if spec in memories:
            rec['memory'] = memories[spec]
        report['results'].append(rec)
        out = Path(args.out)
        (out / 'benchmark.json').write_text(json.dumps(report, indent=1, default=float))
    out = Path(args.out)
    (out / 'benchmark.json').write_text(json.dumps(report, indent=1, default=float))
    text = markdown(report)
    (out / 'benchmark.md').write_text(text)
    report['plot'] = plot(report, out / 'benchmark.png')
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
