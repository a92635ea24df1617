# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
A cache of built artifacts (ONNX exports, TensorRT engines) keyed by what they depend on.

Each artifact ``<stem>-<key><suffix>`` has a JSON sidecar ``<...>.json`` holding the full key
fields. Builds write to ``<file>.tmp-<pid>`` and are renamed into place only once complete, so a
crash or a kill mid-build never leaves a half-written artifact under the final name. A lock file
per artifact makes two processes configuring at once build it once: the second waits, then reuses.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from pathlib import Path
import shutil
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

CACHE_DIR_ENV = 'YOLO_JETSON_ROS_CACHE_DIR'


def default_cache_root() -> Path:
    """Return ``$YOLO_JETSON_ROS_CACHE_DIR`` or ``$ROS_HOME/yolo_jetson_ros`` (``~/.ros/...``)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    ros_home = os.environ.get('ROS_HOME') or os.path.join('~', '.ros')
    return Path(ros_home).expanduser() / 'yolo_jetson_ros'


def key_of(fields: Mapping[str, Any]) -> str:
    """Return a short stable hash of the key fields (sorted JSON)."""
    text = json.dumps(dict(fields), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CacheError(OSError):
    """A cache operation failed (an OSError, so callers treat it like any file problem)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


class ArtifactCache:
    """A folder of built artifacts; see the module docstring for the layout and guarantees."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()

    def path_for(self, stem: str, fields: Mapping[str, Any], suffix: str) -> Path:
        """Return the artifact path for ``fields`` (it may not exist yet)."""
        return self.root / f'{stem}-{key_of(fields)}{suffix}'

    @staticmethod
    def sidecar(path: Path) -> Path:
        """Return the JSON sidecar path of an artifact."""
        return path.with_name(path.name + '.json')

    def lookup(self, path: Path, fields: Mapping[str, Any]) -> Optional[Path]:
        """
        Return ``path`` if it exists, is non-empty and its sidecar holds exactly ``fields``.

        The sidecar also records the artifact's size and sha256 when it was published: a file
        truncated or altered since (a full disk, a crash of the file system, a copy cut short)
        is a miss, so it gets rebuilt instead of failing to load.
        """
        try:
            size = path.stat().st_size
            if size == 0:
                return None
            stored = json.loads(self.sidecar(path).read_text())
            if not isinstance(stored, dict):
                return None
            if stored.get('key') != json.loads(json.dumps(dict(fields), default=str)):
                return None
            if 'size' in stored and stored['size'] != size:
                return None
            if 'sha256' in stored and stored['sha256'] != _sha256_of(path):
                return None
        except (OSError, ValueError):
            return None
        return path

    def invalidate(self, path: Path) -> None:
        """Remove an artifact and its sidecar (e.g. an engine that no longer deserializes)."""
        for p in (path, self.sidecar(path)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    @contextlib.contextmanager
    def lock(self, path: Path) -> Iterator[None]:
        """Hold an exclusive inter-process lock for ``path`` (blocks while another holds it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + '.lock'), 'a+') as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def remove_stale_temporaries(self, path: Path) -> None:
        """Delete ``<path>.tmp-<pid>*`` files and folders left by processes that died mid-build."""
        for pattern in (path.name + '.tmp-*', self.sidecar(path).name + '.tmp-*'):
            for tmp in path.parent.glob(pattern):
                pid = tmp.name.rsplit('.tmp-', 1)[-1].split('.', 1)[0]
                if not pid.isdigit() or not _pid_alive(int(pid)):
                    _remove(tmp)

    def get_or_build(
        self,
        path: Path,
        fields: Mapping[str, Any],
        build: Callable[[Path], None],
        force: bool = False,
        extra: Optional[Dict[str, Any]] = None,
    ) -> 'tuple[Path, bool]':
        """
        Return ``(path, built)``: reuse a matching artifact, or ``build(tmp_path)`` and publish.

        ``build`` must write the complete artifact to the path it is given. ``extra`` goes into
        the sidecar beside the key (e.g. build time, versions for humans).
        """
        with self.lock(path):
            if not force and self.lookup(path, fields):
                return path, False
            self.remove_stale_temporaries(path)
            tmp = path.with_name(f'{path.name}.tmp-{os.getpid()}')
            try:
                build(tmp)
                if not tmp.is_file() or tmp.stat().st_size == 0:
                    raise CacheError(errno.EIO, f'the build produced no file at {tmp}')
                with open(tmp, 'rb') as f:
                    os.fsync(f.fileno())
                self.invalidate(path)
                os.replace(tmp, path)
                self._write_sidecar(path, fields, extra or {})
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            return path, True

    def _write_sidecar(self, path: Path, fields: Mapping[str, Any], extra: Dict[str, Any]) -> None:
        side = self.sidecar(path)
        tmp = side.with_name(f'{side.name}.tmp-{os.getpid()}')
        record = {'key': dict(fields), **extra, 'size': path.stat().st_size,
                  'sha256': _sha256_of(path)}
        try:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
            os.replace(tmp, side)
        finally:  # a full disk must not leave a half-written sidecar behind
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _sha256_of(path: Path) -> str:
    from .models import sha256_of  # memoised on path, size and mtime: cheap on every configure
    return sha256_of(path)


def _remove(path: Path) -> None:
    """Remove a file or a folder tree, ignoring what is already gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
