# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Export Ultralytics weights (ONNX, TensorRT engine) in a child process.

Why a child process: the exporter imports torch and Ultralytics (gigabytes of memory a robot
running ONNX Runtime or TensorRT never needs afterwards), TensorRT builds take minutes on a Jetson
and must be interruptible, and a crashing exporter must not take the node down. The child writes
the artifact to the path it is given; the parent (see :class:`~.cache.ArtifactCache`) publishes
it atomically.

Run as ``python -m yolo_jetson_ros.pipeline.export --weights W --out OUT --format onnx ...``.
"""

import argparse
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

RESULT_PREFIX = 'YOLO_JETSON_ROS_EXPORT_RESULT '
ANSI_ESCAPE = re.compile(r'\x1b\[[0-9;]*m')  # Ultralytics colours its log lines


class ExportError(RuntimeError):
    """The export failed; the message carries the exporter's last words."""


@dataclass
class ExportRequest:
    """Everything that determines an exported artifact (and so belongs in its cache key)."""

    weights: Path
    format: str = 'onnx'  # noqa: A003 ('onnx' or 'engine', as Ultralytics names it)
    imgsz: int = 640
    batch: int = 1
    half: bool = False
    int8: bool = False
    data: str = ''  # INT8 calibration dataset (yaml or folder)
    device: str = 'cpu'  # 'cpu', '0' (GPU index) or 'dla:0' / 'dla:1'
    workspace_gb: Optional[float] = None
    nms_free: bool = False  # YOLO26/YOLOv10: export the one-to-one head (Ultralytics' nms=False)
    extra_args: Dict[str, Any] = field(default_factory=dict)

    def to_argv(self, out: Path) -> List[str]:
        """Return the child's command-line arguments."""
        argv = [
            '--weights',
            str(self.weights),
            '--out',
            str(out),
            '--format',
            self.format,
            '--imgsz',
            str(self.imgsz),
            '--batch',
            str(self.batch),
            '--device',
            self.device,
        ]
        if self.nms_free:
            argv.append('--nms-free')
        if self.half:
            argv.append('--half')
        if self.int8:
            argv += ['--int8', '--data', self.data]
        if self.workspace_gb is not None:
            argv += ['--workspace', str(self.workspace_gb)]
        return argv


def run_export(
    request: ExportRequest,
    out: Path,
    log: Callable[[str], None],
    timeout_s: Optional[float] = None,
) -> Dict[str, Any]:
    """
    Run the exporter in a child process, streaming its output to ``log``; return its metadata.

    The child is killed (and ``out`` removed) on timeout or when this process is interrupted.
    """
    # The child works in a folder beside ``out`` that this process removes whatever happens,
    # even when the child is killed before it could clean up after itself.
    work = out.with_name(out.name + '.work')
    cmd = [sys.executable, '-u', '-m', 'yolo_jetson_ros.pipeline.export', *request.to_argv(out),
           '--workdir', str(work)]
    env = dict(os.environ)
    env.setdefault('YOLO_OFFLINE', '1')  # never pip-install or phone home from inside a node
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    result: Dict[str, Any] = {}
    tail: List[str] = []
    t0 = time.monotonic()
    assert proc.stdout is not None
    # A reader thread, so a silent child (a TensorRT build, a hang) still meets the timeout
    lines: 'queue.Queue[Optional[str]]' = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), name='export_reader',
                              daemon=True)
    reader.start()
    try:
        while True:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                line = ''
            if line is None:
                break
            line = ANSI_ESCAPE.sub('', line).rstrip()
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX):])
                continue
            if line:
                tail = (tail + [line])[-15:]
                log(line)
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise ExportError(f'export exceeded {timeout_s:.0f} s and was stopped')
        rc = proc.wait()
    except BaseException:  # an error, a timeout, Ctrl-C or SIGTERM: no orphan, no partial file
        _kill_group(proc)
        with contextlib.suppress(OSError):
            out.unlink()
        raise
    finally:
        reader.join(timeout=5.0)
        with contextlib.suppress(OSError):
            proc.stdout.close()
        shutil.rmtree(work, ignore_errors=True)
    if rc != 0 or not result:
        if out.exists():
            out.unlink()
        reason = next(
            (t for t in reversed(tail) if 'Error' in t or 'error' in t),
            tail[-1] if tail else f'exit code {rc}',
        )
        raise ExportError(f'{request.format} export of {request.weights.name} failed: {reason}')
    return result


def _pump(stream: Any, lines: 'queue.Queue[Optional[str]]') -> None:
    """Copy the child's output lines into ``lines``; None marks the end."""
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):  # the pipe closed under us
        pass
    finally:
        lines.put(None)


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
    if args.format == 'engine' and Path(args.weights).suffix.lower() == '.onnx':
        # YOLO(...).export needs .pt weights: an ONNX goes to Ultralytics' onnx2engine directly
        from .backends.tensorrt_backend import engine_from_onnx
        return engine_from_onnx(args)
    from ultralytics import YOLO
    import ultralytics

    out = Path(args.out)
    # The exporter writes next to the weights: work on a private copy so nothing is written
    # beside the user's file (which may be read-only or shared).
    if args.workdir:  # given by run_export, which removes it
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        folder = contextlib.nullcontext(args.workdir)
    else:
        folder = tempfile.TemporaryDirectory(prefix='yjr-export-', dir=str(out.parent))
    with folder as work:
        weights = Path(work) / Path(args.weights).name
        shutil.copy2(args.weights, weights)
        model = YOLO(str(weights), task='detect')
        # Ultralytics' default (nms=None) is the dense head + external NMS for every model, as
        # predict() runs it; nms=False keeps an NMS-free one-to-one head where the model has one.
        end2end = args.nms_free and bool(getattr(model.model, 'end2end', False))
        kwargs: Dict[str, Any] = {
            'format': args.format, 'imgsz': args.imgsz, 'batch': args.batch,
            'device': args.device, 'dynamic': False, 'simplify': True, 'verbose': False}
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
        return {
            'format': args.format,
            'end2end': end2end,
            'names': names,
            'imgsz': [args.imgsz, args.imgsz],
            'batch': args.batch,
            'stride': int(max(getattr(model.model, 'stride', [32]))),
            'ultralytics': ultralytics.__version__,
            'seconds': round(time.monotonic() - t0, 2),
        }


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
    parser.add_argument('--nms-free', action='store_true')
    parser.add_argument('--int8', action='store_true')
    parser.add_argument('--data', default='')
    parser.add_argument('--workspace', type=float, default=None)
    parser.add_argument('--workdir', default='', help='scratch folder (default: a temporary one)')
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
