# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Shared fixtures: sample images, model files, a cache folder, an rclpy context.

Data is never copied into the repository: sample images come from the Ultralytics wheel's
assets folder and from ``../shared`` (set ``YOLO_JETSON_ROS_SHARED`` to point elsewhere).
Nothing here downloads anything.
"""

import os
from pathlib import Path
from typing import Dict, Iterator

import cv2
import numpy as np
import pytest

os.environ.setdefault('YOLO_OFFLINE', '1')
os.environ.setdefault(
    'YOLO_CONFIG_DIR', str(Path(__file__).resolve().parents[1] / '.ros' / 'ultralytics')
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('YOLO_JETSON_ROS_SHARED', REPO.parent / 'shared'))
MODELS = SHARED / 'models'
COCO128 = SHARED / 'data' / 'coco128'


def ultralytics_assets() -> Path:
    """Return the folder of sample images shipped inside the ultralytics wheel."""
    ultralytics = pytest.importorskip('ultralytics', reason='ultralytics not installed')
    return Path(ultralytics.__file__).parent / 'assets'


def require_file(path: Path, what: str) -> Path:
    """Skip (naming the missing data) when a shared fixture file is absent."""
    if not path.exists():
        pytest.skip(f'{what} not found at {path} (set YOLO_JETSON_ROS_SHARED)')
    return path


@pytest.fixture(scope='session')
def yolo11n_pt() -> Path:
    """Return real YOLO11n weights trained on coco128 (../shared/models/PROVENANCE.md)."""
    return require_file(MODELS / 'yolo11n_coco128.pt', 'yolo11n_coco128.pt')


@pytest.fixture(scope='session')
def yolo26n_pt() -> Path:
    """Return real YOLO26n weights (NMS-free end-to-end head) trained on coco128."""
    return require_file(MODELS / 'yolo26n_coco128.pt', 'yolo26n_coco128.pt')


@pytest.fixture(scope='session')
def coco128() -> Path:
    """Return the coco128 dataset folder (images + YOLO labels)."""
    return require_file(COCO128 / 'coco128.yaml', 'coco128 dataset').parent


@pytest.fixture(scope='session')
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return one engine/export cache folder shared by the whole test session."""
    return tmp_path_factory.mktemp('engine_cache')


@pytest.fixture(scope='session')
def untrained_pt(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Build untrained checkpoints from Ultralytics' bundled yaml files (seeded, no download)."""
    torch = pytest.importorskip('torch', reason='torch not installed')
    ultralytics = pytest.importorskip('ultralytics', reason='ultralytics not installed')
    folder = tmp_path_factory.mktemp('untrained')
    out: Dict[str, Path] = {}
    for arch in ('yolov8n',):
        torch.manual_seed(0)
        model = ultralytics.YOLO(f'{arch}.yaml')
        path = folder / f'{arch}_untrained.pt'
        model.save(str(path))
        out[arch] = path
    return out


@pytest.fixture(scope='session')
def sample_images() -> Dict[str, np.ndarray]:
    """Return bus.jpg and zidane.jpg (BGR) from the ultralytics wheel."""
    assets = ultralytics_assets()
    images = {}
    for name in ('bus.jpg', 'zidane.jpg'):
        img = cv2.imread(str(assets / name))
        assert img is not None, f'cannot read {assets / name}'
        images[name] = img
    return images


@pytest.fixture
def rclpy_context() -> Iterator[object]:
    """Yield a fresh rclpy context per test (Humble-compatible: no context manager on init)."""
    rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (source tools/activate.sh)')
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
