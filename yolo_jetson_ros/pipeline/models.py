# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Resolve the ``model`` parameter to a file: a path, or a name looked up in model folders.

Order for a name such as ``yolo11n``: ``<model_dir>/yolo11n.{pt,onnx}``, then the folder in
``$YOLO_JETSON_ROS_MODEL_DIR``, then Ultralytics' own download of the official weights into the
cache (only when online: ``YOLO_OFFLINE`` unset). Model files are code (a ``.pt`` is unpickled):
``expected_sha256`` pins the file a robot may load.
"""

from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

MODEL_DIR_ENV = 'YOLO_JETSON_ROS_MODEL_DIR'
WEIGHT_SUFFIXES = ('.pt', '.onnx')
MODEL_SUFFIXES = ('.pt', '.onnx', '.engine')
SIZE_LETTERS = 'nsmlx'


class ModelError(ValueError):
    """The model cannot be resolved or does not pass its checks; the message says why."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model file ready for a backend."""

    path: Path
    format: str  # noqa: A003 ('pt', 'onnx' or 'engine')
    source: str  # 'path', 'model_dir', 'env', 'download'

    @property
    def stem(self) -> str:
        """Return the file name without suffix (used to name cached artifacts)."""
        return self.path.stem


def is_model_name(spec: str) -> bool:
    """Return True when ``spec`` is a bare name (``yolo11n``) rather than a path."""
    return bool(spec) and os.sep not in spec and Path(spec).suffix.lower() not in MODEL_SUFFIXES


def offline() -> bool:
    """Return True when downloads are disabled (Ultralytics' ``YOLO_OFFLINE``)."""
    return os.environ.get('YOLO_OFFLINE', '').strip().lower() not in ('', '0', 'false', 'no')


_sha_cache: Dict[Tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file (memoised on path, size and mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _sha_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        digest = h.hexdigest()
        _sha_cache[key] = digest
    return digest


def search_dirs(model_dir: str) -> List[Tuple[str, Path]]:
    """Return the folders a model name is looked up in, with their origin, in order."""
    dirs: List[Tuple[str, Path]] = []
    if model_dir:
        dirs.append(('model_dir', Path(model_dir).expanduser()))
    env_dir = os.environ.get(MODEL_DIR_ENV, '')
    if env_dir:
        dirs.append(('env', Path(env_dir).expanduser()))
    return dirs


def _download_official(name: str, download_dir: Path, log: Callable[[str], None]) -> Path:
    """Download the official weights by name through Ultralytics (online only)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    target = download_dir / f'{name}.pt'
    if target.is_file():
        return target
    log(f"downloading the official '{name}.pt' through Ultralytics into {download_dir}")
    try:
        from ultralytics.utils.downloads import attempt_download_asset
    except ImportError as exc:
        raise ModelError(
            f"'{name}' is not in any model folder and ultralytics is not installed "
            'to download it; pip install ultralytics or set model_dir'
        ) from exc
    try:
        got = Path(attempt_download_asset(str(target)))
    except Exception as exc:  # network errors come in many types
        raise ModelError(f"download of '{name}.pt' failed: {exc}") from exc
    if not got.is_file():
        raise ModelError(f"'{name}.pt' is not a known Ultralytics asset (download gave nothing)")
    return got


def resolve_model(
    spec: str,
    model_dir: str = '',
    download_dir: Optional[Path] = None,
    expected_sha256: str = '',
    log: Callable[[str], None] = lambda _msg: None,
) -> ResolvedModel:
    """Turn the ``model`` parameter into a checked model file, or raise :class:`ModelError`."""
    spec = spec.strip()
    if not spec:
        raise ModelError(
            'model is empty: give a name such as yolo11n or a path to .pt/.onnx/.engine'
        )
    if is_model_name(spec):
        resolved = None
        for origin, folder in search_dirs(model_dir):
            for suffix in WEIGHT_SUFFIXES:
                candidate = folder / f'{spec}{suffix}'
                if candidate.is_file():
                    resolved = ResolvedModel(candidate, suffix[1:], origin)
                    break
            if resolved:
                break
        if resolved is None:
            looked = ', '.join(str(d) for _, d in search_dirs(model_dir)) or 'no folder set'
            if offline() or download_dir is None:
                raise ModelError(
                    f"model '{spec}' not found (looked in: {looked}) and downloads are off "
                    f'(YOLO_OFFLINE); set model_dir or {MODEL_DIR_ENV}, or give a file path'
                )
            resolved = ResolvedModel(_download_official(spec, download_dir, log), 'pt', 'download')
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(f"model file '{path}' does not exist")
        suffix = path.suffix.lower()
        if suffix not in MODEL_SUFFIXES:
            raise ModelError(
                f"model file '{path}' has suffix '{suffix}'; expected one of "
                f"{', '.join(MODEL_SUFFIXES)}"
            )
        resolved = ResolvedModel(path, suffix[1:], 'path')
    check_model_file(resolved, expected_sha256)
    return resolved


def check_model_file(model: ResolvedModel, expected_sha256: str = '') -> None:
    """Reject empty, truncated-looking or hash-mismatched files before anything parses them."""
    size = model.path.stat().st_size
    if size == 0:
        raise ModelError(f"model file '{model.path}' is empty")
    if model.format == 'pt':
        import zipfile

        if not zipfile.is_zipfile(model.path):  # torch.save() files are zip archives
            raise ModelError(
                f"model file '{model.path}' is not a PyTorch checkpoint "
                '(not a zip archive: truncated or another format)'
            )
    if expected_sha256:
        actual = sha256_of(model.path)
        if actual.lower() != expected_sha256.strip().lower():
            raise ModelError(
                f"model file '{model.path}' has sha256 {actual}, but model_sha256 "
                f'pins {expected_sha256.strip()}; refusing to load it'
            )
