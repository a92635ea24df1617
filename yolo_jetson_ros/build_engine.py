# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Prebuild a TensorRT engine into the node's cache, so the node's first configure is fast.

``ros2 run yolo_jetson_ros build_engine --model yolo11n --precision fp16 --dla-core 0``

It runs the very function the node's TensorRT backend runs (``prepare_engine``), with the same
cache folder and key: the node then finds the engine and reuses it. Prints where the engine is
and its key. Exit status: 0 built or reused, 2 the request cannot be honoured, 1 the build failed.
"""

import argparse
import sys
from typing import List, Optional

from yolo_jetson_ros.pipeline.backends.base import BackendError
from yolo_jetson_ros.pipeline.backends.tensorrt_backend import (load_engine, prepare_engine,
                                                                validate_tensorrt_request)
from yolo_jetson_ros.pipeline.cache import default_cache_root
from yolo_jetson_ros.pipeline.detector import (ConfigurationError, DetectorConfig,
                                               resolve_precision)
from yolo_jetson_ros.pipeline.export import ExportError
from yolo_jetson_ros.pipeline.models import ModelError, resolve_model
from yolo_jetson_ros.pipeline.tensorrt_runtime import import_tensorrt


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (names follow the node's parameters)."""
    defaults = DetectorConfig()
    parser = argparse.ArgumentParser(
        prog='build_engine', description=__doc__.splitlines()[0],
        epilog='Builds take minutes on a Jetson; run this once after installing or updating '
               'TensorRT, JetPack, Ultralytics or the weights.')
    parser.add_argument('--model', default=defaults.model,
                        help='name (looked up in --model-dir) or path to .pt/.onnx weights')
    parser.add_argument('--model-dir', default=defaults.model_dir)
    parser.add_argument('--model-sha256', default=defaults.model_sha256,
                        help='refuse weights whose sha256 differs')
    parser.add_argument('--precision', default='fp16', choices=('auto', 'fp32', 'fp16', 'int8'))
    parser.add_argument('--dla-core', type=int, default=defaults.dla_core,
                        help='-1 = GPU, 0 or 1 = that DLA core (Jetson AGX/NX Xavier, AGX Orin, '
                             'Orin NX)')
    parser.add_argument('--imgsz', type=int, default=defaults.imgsz)
    parser.add_argument('--batch', type=int, default=defaults.batch)
    parser.add_argument('--device', default='cuda:0')
    parser.add_argument('--cache-dir', default=defaults.cache_dir,
                        help=f'default: {default_cache_root() / "engines"} (the node\'s default)')
    parser.add_argument('--data', default=defaults.int8_calibration_data,
                        help='INT8 calibration dataset yaml (precision int8 only)')
    parser.add_argument('--workspace-gb', type=float, default=defaults.workspace_gb,
                        help='TensorRT builder workspace in GiB, 0 = let TensorRT decide')
    parser.add_argument('--timeout', type=float, default=defaults.export_timeout_s,
                        help='give up on a build after this many seconds')
    parser.add_argument('--force', action='store_true', help='rebuild even if cached')
    parser.add_argument('--verify', action='store_true',
                        help='load the engine afterwards (deserialize, allocate buffers)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Build (or find) the engine; print its path and cache key."""
    args = parse_args(argv)
    config = DetectorConfig(
        model=args.model, model_dir=args.model_dir, model_sha256=args.model_sha256,
        backend='tensorrt', device=args.device, precision=args.precision, imgsz=args.imgsz,
        batch=args.batch, cache_dir=args.cache_dir, force_rebuild=args.force,
        dla_core=args.dla_core, workspace_gb=args.workspace_gb,
        int8_calibration_data=args.data, export_timeout_s=args.timeout)

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        precision = resolve_precision(config.precision, 'tensorrt', config.device)
        reason = validate_tensorrt_request(precision, config.dla_core,
                                           config.int8_calibration_data, None)
        if reason:
            raise BackendError(reason)
        model = resolve_model(config.model, config.model_dir,
                              download_dir=default_cache_root() / 'models',
                              expected_sha256=config.model_sha256, log=log)
        if model.format == 'engine':
            raise BackendError(f'{model.path} is already an engine; give .pt or .onnx weights')
        trt = import_tensorrt()
        artifact = prepare_engine(model, config, config.device, precision, log, trt=trt)
    except (ModelError, BackendError, ConfigurationError) as exc:
        print(f'build_engine: {exc}', file=sys.stderr)
        return 2
    except (ExportError, OSError) as exc:
        print(f'build_engine: build failed: {exc}', file=sys.stderr)
        return 1
    if args.verify:
        try:
            backend = load_engine(trt, artifact.path, config.device, config.dla_core,
                                  config.imgsz, config.batch, log, precision)
        except BackendError as exc:
            print(f'build_engine: the engine does not load: {exc}', file=sys.stderr)
            return 1
        log(f'verified: {backend.describe()}')
        backend.close()
    print(f'engine: {artifact.path}')
    print(f'key: {artifact.key}')
    print('built' if artifact.built else 'reused (already cached)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
