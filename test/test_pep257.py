# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""ament_pep257 docstring conventions over the package and its tests (in a fresh interpreter)."""

from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ['yolo_jetson_ros', 'launch', 'test', 'tools']


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257() -> None:
    """The package passes ament_pep257."""
    pytest.importorskip('ament_pep257.main', reason='ament_pep257 not installed')
    proc = subprocess.run(
        [sys.executable, '-c',
         'import sys; from ament_pep257.main import main; sys.exit(main(argv=sys.argv[1:]))',
         *PATHS], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'docstring errors:\n{proc.stdout[-5000:]}{proc.stderr[-2000:]}'
