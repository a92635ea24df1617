# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Shutdown by signal: the node process exits 0, kills its exporter, leaves no partial file.

The node runs as ``python -m yolo_jetson_ros.node.detector_node`` with autostart and an empty
cache, so configure starts an ONNX export in a child process; SIGINT or SIGTERM arrives while the
export runs (and, separately, while the node is active and idle).
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
from typing import Any, Callable, List

import psutil
import pytest

from reliability_support import unique_namespace

pytestmark = pytest.mark.integration

# Files a cache may hold once nobody builds: artifacts, their sidecars and lock files
COMPLETE_SUFFIXES = ('.onnx', '.onnx.json', '.onnx.lock', '.engine', '.engine.json',
                     '.engine.lock')


class NodeProcess:
    """The detector node as a child process, its output collected line by line."""

    def __init__(self, model: Path, cache: Path) -> None:
        """Start the node with autostart and the given model and cache folder."""
        cmd = [sys.executable, '-u', '-m', 'yolo_jetson_ros.node.detector_node', '--ros-args',
               '-r', f'__ns:={unique_namespace("sig")}',
               '-p', 'autostart:=true', '-p', f'model:={model}', '-p', 'backend:=onnxruntime',
               '-p', 'device:=cpu', '-p', f'engine_cache_dir:={cache}']
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=dict(os.environ))
        self.lines: List[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip())
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, text: str, timeout_s: float = 120.0) -> None:
        """Wait until a line containing ``text`` was printed (fail if the process ends first)."""
        def found() -> bool:
            return any(text in line for line in self.lines) or self.proc.poll() is not None
        with self._seen:
            assert self._seen.wait_for(found, timeout_s), f'no "{text}" in time:\n{self.output}'
        assert any(text in line for line in self.lines), \
            f'the node ended before printing "{text}":\n{self.output}'

    def exporters(self, cache: Path) -> List[psutil.Process]:
        """Return the exporter processes working for this cache (they run in their own session)."""
        found = []
        for proc in psutil.process_iter(['cmdline']):
            cmdline = proc.info['cmdline'] or []
            if 'yolo_jetson_ros.pipeline.export' in cmdline and any(
                    str(cache) in arg for arg in cmdline):
                found.append(proc)
        return found

    def finish(self, timeout_s: float = 60.0) -> int:
        """Wait for the process to end; return its exit code."""
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f'the node did not exit after the signal:\n{self.output}')
        self._reader.join(timeout=10)
        return rc

    @property
    def output(self) -> str:
        """Return everything the node printed so far."""
        return '\n'.join(self.lines[-60:])


def assert_cache_clean(cache: Path) -> None:
    """Only complete artifacts, sidecars and lock files: no temporary file or work folder."""
    if not cache.exists():
        return
    leftovers = [p.name for p in cache.iterdir()
                 if p.is_dir() or not p.name.endswith(COMPLETE_SUFFIXES) or '.tmp-' in p.name]
    assert leftovers == [], f'partial files left in the cache: {leftovers}'
    for artifact in cache.glob('*.onnx'):
        assert artifact.with_name(artifact.name + '.json').is_file(), \
            f'{artifact.name} has no sidecar: it was published before it was complete'


def signal_and_check_exit(node: 'NodeProcess', signum: int, ready: Callable[[], None]) -> None:
    """Wait for ``ready``, send ``signum``; the process must exit 0 without a traceback."""
    try:
        ready()
        node.proc.send_signal(signum)
        rc = node.finish()
    finally:
        if node.proc.poll() is None:
            node.proc.kill()
    assert rc == 0, f'exit code {rc} after {signal.Signals(signum).name}:\n{node.output}'
    assert 'Traceback' not in node.output, node.output


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_during_export(tmp_path: Path, yolo11n_pt: Path, signum: int) -> None:
    """A signal mid-export: exit code 0, the exporter child gone, no partial file in the cache."""
    cache = tmp_path / 'cache'
    node = NodeProcess(yolo11n_pt, cache)
    children: List[Any] = []

    def exporter_started() -> None:
        node.wait_for('[export]')  # the exporter child has started and is talking
        children.extend(node.exporters(cache))
        assert children, f'no exporter process found:\n{node.output}'

    signal_and_check_exit(node, signum, exporter_started)
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f'exporter processes survived the node: {alive}'
    assert not node.exporters(cache)
    assert_cache_clean(cache)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_while_active(tmp_path: Path, yolo11n_pt: Path, cache_dir: Path,
                             signum: int) -> None:
    """A signal while the node is active and waiting for images: exit code 0, no traceback."""
    node = NodeProcess(yolo11n_pt, cache_dir)
    signal_and_check_exit(node, signum, lambda: node.wait_for('active: waiting for images'))
    assert_cache_clean(cache_dir)
