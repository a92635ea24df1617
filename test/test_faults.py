# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Faults at configure: each one fails configure with its reason logged, none crashes the node.

After the cause is fixed, the same node (same process, same context) configures successfully:
a failed configure must leave nothing behind that gets in the way of the next one.
"""

import json
import os
from pathlib import Path
import shutil
from typing import Any, Callable, Dict, Iterator

import pytest

from reliability_support import fresh_node

pytestmark = pytest.mark.integration


@pytest.fixture
def node(rclpy_context: Any, yolo11n_pt: Path, cache_dir: Path) -> Iterator[Any]:
    """Yield an unconfigured detector: onnxruntime on the CPU, the session's cache."""
    n = fresh_node(rclpy_context, yolo11n_pt, cache_dir)
    try:
        yield n
    finally:
        n.stop()
        n.destroy_node()


def _set(node: Any, **values: Any) -> None:
    from rclpy.parameter import Parameter
    results = node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    assert all(r.successful for r in results), [r.reason for r in results]


def configure(node: Any) -> Any:
    """Trigger configure; return the transition's result."""
    return node.trigger_configure()


def assert_fails_then_recovers(node: Any, capfd: Any, reason: str,
                               fix: Callable[[], None]) -> None:
    """Configure fails with ``reason`` in the error log; after ``fix()`` it succeeds."""
    from rclpy.lifecycle import TransitionCallbackReturn
    capfd.readouterr()
    assert configure(node) == TransitionCallbackReturn.FAILURE
    err = ''.join(capfd.readouterr())
    failed = [line for line in err.splitlines() if 'configure failed' in line]
    assert failed, f'no "configure failed" line logged:\n{err}'
    assert reason.lower() in failed[-1].lower(), failed[-1]
    assert 'Traceback' not in err, err
    assert node.detector is None
    assert node._state_machine.current_state[1] == 'unconfigured'
    fix()
    assert configure(node) == TransitionCallbackReturn.SUCCESS
    assert node.detector is not None
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS


def test_model_file_missing(node: Any, capfd: Any, tmp_path: Path, yolo11n_pt: Path) -> None:
    """A model path that does not exist."""
    _set(node, model=str(tmp_path / 'nope.pt'))
    assert_fails_then_recovers(node, capfd, 'does not exist',
                               lambda: _set(node, model=str(yolo11n_pt)))


def test_model_name_not_found(node: Any, capfd: Any, tmp_path: Path, yolo11n_pt: Path) -> None:
    """A model name in no model folder, offline."""
    _set(node, model='yolo_missing_name', model_dir=str(tmp_path))
    assert_fails_then_recovers(node, capfd, 'not found',
                               lambda: _set(node, model=yolo11n_pt.stem))


def test_truncated_pt(node: Any, capfd: Any, tmp_path: Path, yolo11n_pt: Path) -> None:
    """A .pt cut in half (an interrupted copy or download)."""
    data = yolo11n_pt.read_bytes()
    model = tmp_path / yolo11n_pt.name  # same name and (once whole) content: cache reused
    model.write_bytes(data[:len(data) // 2])
    _set(node, model=str(model))
    assert_fails_then_recovers(node, capfd, 'not a PyTorch checkpoint',
                               lambda: model.write_bytes(data))  # the copy, done again


def test_random_bytes_pt(node: Any, capfd: Any, tmp_path: Path, cache_dir: Path,
                         yolo11n_pt: Path) -> None:
    """Random bytes named .pt."""
    model = tmp_path / 'random.pt'
    model.write_bytes(os.urandom(100_000))
    _set(node, model=str(model))
    assert_fails_then_recovers(node, capfd, 'not a PyTorch checkpoint',
                               lambda: _set(node, model=str(yolo11n_pt)))


def test_zip_that_is_no_checkpoint(node: Any, capfd: Any, tmp_path: Path,
                                   yolo11n_pt: Path) -> None:
    """A zip archive named .pt that holds no checkpoint: the exporter child fails, says why."""
    import zipfile
    model = tmp_path / 'notamodel.pt'
    with zipfile.ZipFile(model, 'w') as z:
        z.writestr('notes.txt', 'hello')
    _set(node, model=str(model), engine_cache_dir=str(tmp_path / 'cache'))
    assert_fails_then_recovers(node, capfd, 'export of notamodel.pt failed',
                               lambda: _set(node, model=str(yolo11n_pt)))
    assert not list((tmp_path / 'cache').glob('*.tmp-*')), 'a failed export left a partial file'


def test_random_bytes_onnx(node: Any, capfd: Any, tmp_path: Path, yolo11n_pt: Path) -> None:
    """Random bytes named .onnx."""
    model = tmp_path / 'random.onnx'
    model.write_bytes(os.urandom(100_000))
    _set(node, model=str(model))
    assert_fails_then_recovers(node, capfd, 'cannot load ONNX model',
                               lambda: _set(node, model=str(yolo11n_pt)))


def test_empty_model_file(node: Any, capfd: Any, tmp_path: Path, yolo11n_pt: Path) -> None:
    """A zero-byte model file."""
    model = tmp_path / 'empty.onnx'
    model.touch()
    _set(node, model=str(model))
    assert_fails_then_recovers(node, capfd, 'is empty',
                               lambda: _set(node, model=str(yolo11n_pt)))


def test_cache_dir_is_a_file(node: Any, capfd: Any, tmp_path: Path, cache_dir: Path) -> None:
    """engine_cache_dir names a regular file (an unusable cache folder)."""
    blocker = tmp_path / 'cache_is_a_file'
    blocker.write_text('not a folder')
    _set(node, engine_cache_dir=str(blocker), force_engine_rebuild=True)
    assert_fails_then_recovers(node, capfd, str(blocker),
                               lambda: _set(node, engine_cache_dir=str(cache_dir),
                                            force_engine_rebuild=False))


def test_cache_dir_below_a_file(node: Any, capfd: Any, tmp_path: Path, cache_dir: Path) -> None:
    """engine_cache_dir lies below a regular file (cannot be created)."""
    blocker = tmp_path / 'file'
    blocker.write_text('')
    _set(node, engine_cache_dir=str(blocker / 'engines'))
    assert_fails_then_recovers(node, capfd, 'Not a directory',
                               lambda: _set(node, engine_cache_dir=str(cache_dir)))


def test_cache_dir_on_a_read_only_file_system(node: Any, capfd: Any, cache_dir: Path) -> None:
    """engine_cache_dir on a read-only file system (procfs: refused even for root)."""
    _set(node, engine_cache_dir='/proc/yolo_jetson_ros_engines')
    assert_fails_then_recovers(node, capfd, '/proc/yolo_jetson_ros_engines',
                               lambda: _set(node, engine_cache_dir=str(cache_dir)))


def _warm_copy(cache_dir: Path, target: Path, node: Any) -> Dict[str, Path]:
    """Configure once on the session cache, then copy this model's artifacts to ``target``."""
    from rclpy.lifecycle import TransitionCallbackReturn
    assert configure(node) == TransitionCallbackReturn.SUCCESS
    onnx = node.detector.backend.path  # this configuration's export, not merely the newest
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    target.mkdir()
    copied = target / onnx.name
    shutil.copy2(onnx, copied)
    shutil.copy2(onnx.with_name(onnx.name + '.json'), target / (onnx.name + '.json'))
    return {'onnx': copied, 'sidecar': target / (onnx.name + '.json'), 'original': onnx}


# (An empty artifact and a garbled or missing sidecar are misses too; each case costs an export)
@pytest.mark.parametrize('damage', ['truncate', 'flip'])
def test_corrupt_cached_onnx_is_rebuilt(node: Any, tmp_path: Path, cache_dir: Path,
                                        damage: str) -> None:
    """A damaged cached export is detected and rebuilt: configure succeeds, the file is whole."""
    from rclpy.lifecycle import TransitionCallbackReturn
    files = _warm_copy(cache_dir, tmp_path / 'cache', node)
    onnx, sidecar = files['onnx'], files['sidecar']
    good = files['original'].read_bytes()
    if damage == 'truncate':
        onnx.write_bytes(good[:len(good) // 2])
    elif damage == 'zero':
        onnx.write_bytes(b'')
    elif damage == 'flip':  # same size, one byte changed in the middle of the weights
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        onnx.write_bytes(bytes(data))
    elif damage == 'sidecar_garbage':
        sidecar.write_text('{"key": ')
    else:
        sidecar.unlink()
    _set(node, engine_cache_dir=str(tmp_path / 'cache'))
    assert configure(node) == TransitionCallbackReturn.SUCCESS
    assert onnx.stat().st_size == len(good)
    record = json.loads(sidecar.read_text())
    assert record['size'] == len(good) and len(record['sha256']) == 64
    assert sorted(p.name for p in (tmp_path / 'cache').iterdir()) == sorted(
        [onnx.name, sidecar.name, onnx.name + '.lock'])
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS


def test_model_sha256_mismatch_is_refused(node: Any, capfd: Any, yolo11n_pt: Path) -> None:
    """A model_sha256 pin that the file does not match."""
    import hashlib
    actual = hashlib.sha256(yolo11n_pt.read_bytes()).hexdigest()
    _set(node, model_sha256='0' * 64)
    assert_fails_then_recovers(node, capfd, 'refusing to load',
                               lambda: _set(node, model_sha256=actual.upper()))


def test_cuda_device_without_a_gpu(node: Any, capfd: Any) -> None:
    """Ask for cuda:0 on the torch backend where no GPU is (as an out-of-memory GPU fails)."""
    torch = pytest.importorskip('torch')
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present: this emulates its absence')
    _set(node, backend='torch', device='cuda:0')
    assert_fails_then_recovers(node, capfd, 'cuda',
                               lambda: _set(node, backend='onnxruntime', device='cpu'))


def test_cuda_out_of_memory_at_build(node: Any, capfd: Any, monkeypatch: Any) -> None:
    """A backend that runs out of (GPU) memory while loading fails configure with the reason."""
    import yolo_jetson_ros.pipeline.backends.onnxruntime_backend as ort_backend
    real = ort_backend.OnnxRuntimeBackend.__init__

    def out_of_memory(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ort_backend.BackendError('CUDA out of memory: tried to allocate 2.00 GiB')

    monkeypatch.setattr(ort_backend.OnnxRuntimeBackend, '__init__', out_of_memory)
    assert_fails_then_recovers(
        node, capfd, 'out of memory',
        lambda: monkeypatch.setattr(ort_backend.OnnxRuntimeBackend, '__init__', real))
