# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""License headers: ament_copyright where installed, and our own SPDX check everywhere."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = ('# SPDX-License-Identifier: AGPL-3.0-or-later',
          '# Copyright (C) 2026 yolo_jetson_ros contributors')


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright() -> None:
    """The package passes ament_copyright (a ROS install has it; PyPI has no wheel)."""
    main = pytest.importorskip(
        'ament_copyright.main',
        reason='ament_copyright not installed (no PyPI wheel; rosdep installs it on ROS)').main
    rc = main(argv=['yolo_jetson_ros', 'launch', 'test', 'tools', 'setup.py'])
    assert rc == 0, 'Found errors'


@pytest.mark.linter
def test_every_python_file_has_the_license_header() -> None:
    """Every Python source of the package, its launch files and tests names its license."""
    files = [p for d in ('yolo_jetson_ros', 'launch', 'test', 'tools') for p in
             (ROOT / d).rglob('*.py')] + [ROOT / 'setup.py']
    missing = [str(p.relative_to(ROOT)) for p in files
               if tuple(p.read_text().splitlines()[:2]) != HEADER]
    assert files and not missing, f'files without the SPDX/copyright header: {missing}'
