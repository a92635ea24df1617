# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Export Ultralytics weights (ONNX, TensorRT engine) in a child process.

Why a child process: the exporter imports torch and Ultralytics (gigabytes of memory a robot
running ONNX Runtime or TensorRT never needs afterwards), TensorRT builds take minutes on a Jetson
and must be interruptible, and a crashing exporter must not take the node down. The child writes
the artifact to the path it is given; the parent (see :class:`~.cache.ArtifactCache`) publishes
it atomically.

Run as ``python -m yolo_jetson_ros.pipeline.export --weights W --out OUT --format onnx ...``.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

RESULT_PREFIX = 'YOLO_JETSON_ROS_EXPORT_RESULT '


class ExportError(RuntimeError):
    """The export failed; the message carries the exporter's last words."""


@dataclass
class ExportRequest:
    """Everything that determines an exported artifact (and so belongs in its cache key)."""

    weights: Path
    format: str = 'onnx'  # 'onnx' or 'engine'
    imgsz: int = 640
    batch: int = 1
    half: bool = False
    int8: bool = False
    data: str = ''  # INT8 calibration dataset (yaml or folder)
    device: str = 'cpu'  # 'cpu', '0' (GPU index) or 'dla:0' / 'dla:1'
    workspace_gb: Optional[float] = None
    extra_args: Dict[str, Any] = field(default_factory=dict)

    def to_argv(self, out: Path) -> List[str]:
        """Return the child's command-line arguments."""
        argv = ['--weights', str(self.weights), '--out', str(out), '--format', self.format,
                '--imgsz', str(self.imgsz), '--batch', str(self.batch), '--device', self.device]
        if self.half:
            argv.append('--half')
        if self.int8:
            argv += ['--int8', '--data', self.data]
        if self.workspace_gb is not None:
            argv += ['--workspace', str(self.workspace_gb)]
        return argv


def run_export(request: ExportRequest, out: Path, log: Callable[[str], None],
               timeout_s: Optional[float] = None) -> Dict[str, Any]:
    """Run the exporter in a child process, streaming its output to ``log``; return its metadata.

    The child is killed (and ``out`` removed) on timeout or when this process is interrupted.
    """
    cmd = [sys.executable, '-u', '-m', 'yolo_jetson_ros.pipeline.export', *request.to_argv(out)]
    env = dict(os.environ)
    env.setdefault('YOLO_OFFLINE', '1')  # never pip-install or phone home from inside a node
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    result: Dict[str, Any] = {}
    tail: List[str] = []
    t0 = time.monotonic()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX):])
                continue
            if line:
                tail = (tail + [line])[-15:]
                log(line)
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise ExportError(f'export exceeded {timeout_s:.0f} s and was stopped')
        rc = proc.wait()
    except BaseException:
        _kill_group(proc)
        if out.exists():
            out.unlink()
        raise
    if rc != 0 or not result:
        if out.exists():
            out.unlink()
        reason = next((t for t in reversed(tail) if 'Error' in t or 'error' in t), tail[-1] if tail
                      else f'exit code {rc}')
        raise ExportError(f'{request.format} export of {request.weights.name} failed: {reason}')
    return result


def _kill_group(proc: 'subprocess.Popen[str]') -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _export_in_this_process(args: argparse.Namespace) -> Dict[str, Any]:
    from ultralytics import YOLO
    import ultralytics

    out = Path(args.out)
    # The exporter writes next to the weights: work on a private copy so nothing is written
    # beside the user's file (which may be read-only or shared).
    with tempfile.TemporaryDirectory(prefix='yjr-export-', dir=str(out.parent)) as work:
        weights = Path(work) / Path(args.weights).name
        shutil.copy2(args.weights, weights)
        model = YOLO(str(weights), task='detect')
        end2end = bool(getattr(model.model, 'end2end', False))
        kwargs: Dict[str, Any] = dict(format=args.format, imgsz=args.imgsz, batch=args.batch,
                                      device=args.device, dynamic=False, simplify=True,
                                      verbose=False)
        # An NMS-free head (YOLO26, YOLOv10) is exported as such, as predict() runs it;
        # other heads give the dense output and NMS stays ours.
        kwargs['nms'] = False if end2end else None
        if args.format == 'engine':
            kwargs.update(half=args.half, int8=args.int8)
            if args.int8:
                kwargs['data'] = args.data
            if args.workspace is not None:
                kwargs['workspace'] = args.workspace
        t0 = time.monotonic()
        produced = Path(model.export(**kwargs))
        shutil.move(str(produced), str(out))
        names = {int(k): str(v) for k, v in dict(model.names).items()}
        return {'format': args.format, 'end2end': end2end, 'names': names,
                'imgsz': [args.imgsz, args.imgsz], 'batch': args.batch,
                'stride': int(max(getattr(model.model, 'stride', [32]))),
                'ultralytics': ultralytics.__version__, 'seconds': round(time.monotonic() - t0, 2)}


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the exporter child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--format', choices=('onnx', 'engine'), default='onnx')
    parser.add_argument('--imgsz', type=int, default=640)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--half', action='store_true')
    parser.add_argument('--int8', action='store_true')
    parser.add_argument('--data', default='')
    parser.add_argument('--workspace', type=float, default=None)
    args = parser.parse_args(argv)
    try:
        meta = _export_in_this_process(args)
    except Exception as exc:  # report any exporter failure in one line the parent can show
        print(f'Error: {type(exc).__name__}: {exc}', flush=True)
        return 1
    print(RESULT_PREFIX + json.dumps(meta), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
