# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Smoke test of the benchmark on the CPU (onnxruntime): structure only, no timed assertions."""

import json
from pathlib import Path

import pytest

pytest.importorskip('onnxruntime', reason='onnxruntime not installed')
pytest.importorskip('ultralytics', reason='ultralytics not installed')


def test_benchmark_cpu_smoke(yolo11n_pt: Path, coco128: Path, tmp_path: Path) -> None:
    from yolo_jetson_ros import benchmark
    out = tmp_path / 'bench'
    rc = benchmark.main(['--model', str(yolo11n_pt), '--data', str(coco128 / 'coco128.yaml'),
                         '--data-limit', '4', '--backends', 'onnxruntime', '--iterations', '3',
                         '--warmup', '1', '--skip-node', '--out', str(out)])
    assert rc == 0
    report = json.loads((out / 'benchmark.json').read_text())
    assert report['environment']['python']
    (rec,) = report['results']
    assert 'error' not in rec, rec.get('error')
    assert (out / 'record-onnxruntime.json').exists()  # measured in a process of its own
    assert rec['format'] == 'ONNX' and rec['size_mb'] > 0
    assert 0.0 <= rec['map']['map50_95'] <= 1.0 and rec['map']['images'] == 4
    for key in ('e2e_ms', 'preprocess_ms', 'inference_ms', 'postprocess_ms'):
        assert rec['pipeline'][key]['p50'] > 0
    assert rec['bare']['session_run']['p50'] > 0
    # the pipeline and session.run once more, alternately, for the ratio
    pairs = rec['interleaved']
    assert pairs['bare'] == 'session_run'
    assert pairs['pipeline_e2e_ms']['n'] == pairs['bare_ms']['n'] == 3
    assert 'pipeline_over_bare_interleaved' in rec['ratios']
    assert rec['ultralytics_ms']['p50'] > 0
    assert rec['ratios'], 'no ratios'
    # Ultralytics' val of the same ONNX file on the same 4 images, against ours scored its way
    val = rec['map_val']
    assert val['ultralytics'].get('images') == 4, val
    assert abs(val['ours']['map50_95'] - val['ultralytics']['map50_95']) <= 0.003, val
    assert abs(val['ours_minus_ultralytics']) <= 0.003, val
    # the memory children ran first, in their own processes (ours exported the ONNX file)
    assert rec['memory']['ours']['peak_rss_mb'] > 0, rec['memory']
    assert rec['memory']['ultralytics']['peak_rss_mb'] > 0, rec['memory']
    for name, value in rec['ratios'].items():
        assert isinstance(value, float) and value > 0, name
    text = (out / 'benchmark.md').read_text()
    assert '| Format | Backend | Size (MB) | mAP50-95 |' in text
    assert 'onnxruntime' in text and 'pipeline_over_bare_session_run' in text
    assert "## mAP50-95 against Ultralytics' val" in text


def test_map_names_an_unreadable_dataset_image(yolo11n_pt: Path, tmp_path: Path) -> None:
    import argparse
    from yolo_jetson_ros import benchmark
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not a jpeg')
    args = argparse.Namespace(model=str(yolo11n_pt), imgsz=320, out=str(tmp_path), batch=1)
    detector = benchmark.build('torch-cpu', args, 1)
    try:
        with pytest.raises(ValueError, match='cannot read dataset image .*broken.jpg'):
            benchmark.evaluate_map(detector, [bad])
    finally:
        detector.close()


def test_parse_args_defaults() -> None:
    from yolo_jetson_ros.benchmark import parse_args
    args = parse_args(['--cameras', '1,2,4'])
    assert args.cameras == [1, 2, 4] and args.imgsz == 640 and args.batch == 1


def test_cached_artifact_is_the_one_of_this_batch(tmp_path: Path) -> None:
    # the multi-camera runs export batch-2/4 models later into the same cache: Ultralytics'
    # reference must run the batch-1 file ours runs, not the newest one
    import os
    from yolo_jetson_ros.benchmark import cached_artifact, parse_args
    cache = tmp_path / 'cache'
    cache.mkdir()
    for i, batch in enumerate((1, 4)):
        path = cache / f'model-{batch}.onnx'
        path.write_bytes(b'x' * (batch + 1))
        (cache / f'model-{batch}.onnx.json').write_text(json.dumps(
            {'key': {'batch': batch, 'imgsz': 640, 'kind': 'onnx'}}))
        os.utime(path, (1000 + i, 1000 + i))  # the batch-4 export is the newest
    (cache / 'stray.onnx').write_bytes(b'no sidecar')
    args = parse_args(['--out', str(tmp_path)])
    assert cached_artifact(args, '.onnx') == cache / 'model-1.onnx'
    assert cached_artifact(parse_args(['--out', str(tmp_path), '--batch', '4']),
                           '.onnx') == cache / 'model-4.onnx'
    assert cached_artifact(parse_args(['--out', str(tmp_path), '--imgsz', '320']),
                           '.onnx') is None


@pytest.mark.integration
def test_node_benchmark_runs_closed_loop_and_paced_cameras(
        yolo11n_pt: Path, coco128: Path, tmp_path: Path) -> None:
    """
    The in-node measurement through a real rclpy graph answers every frame it sends.

    Closed loop with Python and with serialized ends, then two paced cameras batched into one
    inference. Counts only: no timed assertion.
    """
    pytest.importorskip('rclpy', reason='rclpy not installed (source tools/activate.sh)')
    from yolo_jetson_ros import benchmark
    args = benchmark.parse_args(['--model', str(yolo11n_pt), '--imgsz', '320', '--iterations',
                                 '6', '--warmup', '2', '--out', str(tmp_path)])
    images = sorted((coco128 / 'images' / 'train2017').glob('*.jpg'))
    frames = benchmark.make_frames(images, 3)
    closed = benchmark.node_benchmark('onnxruntime', args, frames, 1, 0.0, 0.0)
    assert 'aborted' not in closed, closed
    assert closed['received'] == closed['published'] == 6, closed
    assert closed['serialized_ends']['received'] == 6, closed['serialized_ends']
    assert closed['latency_ms']['p50'] > 0 and closed['serialized_ends']['latency_ms']['p50'] > 0
    counters = closed['node_counters']
    assert counters['bad_input'] == counters['inference_errors'] == 0, counters
    assert counters['processed'] == 2 * (6 + 2), counters  # warm-up and measured, both ends
    paced = benchmark.node_benchmark('onnxruntime', args, frames, 2, 1.0, 5.0)
    assert paced['published'] > 0 and paced['received'] > 0, paced
    assert paced['node_counters_measured']['processed'] > 0, paced
    assert paced['node_counters']['bad_input'] == 0, paced['node_counters']
