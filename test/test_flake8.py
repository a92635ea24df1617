# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
ament_flake8 over the package (ROS 2's flake8 configuration: 99 columns, google imports).

It runs in a fresh interpreter: flake8 forks worker processes, and forking this pytest process,
which other tests filled with rclpy, torch and DDS threads, is not safe.
"""

from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ['yolo_jetson_ros', 'launch', 'test', 'tools', 'setup.py']
SCRIPT = ('import sys\n'
          'from ament_flake8.main import main_with_errors\n'
          'rc, errors = main_with_errors(argv=sys.argv[1:])\n'
          'print("\\n".join(errors))\n'
          'sys.exit(rc)\n')


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8() -> None:
    """The package passes ament_flake8."""
    pytest.importorskip('ament_flake8.main', reason='ament_flake8 not installed')
    proc = subprocess.run([sys.executable, '-c', SCRIPT, *PATHS], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'code style errors / warnings:\n{proc.stdout}{proc.stderr}'
