# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""ament_flake8 over the package (ROS 2's flake8 configuration: 99 columns, google imports)."""

import pytest


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8() -> None:
    """The package passes ament_flake8."""
    main_with_errors = pytest.importorskip(
        'ament_flake8.main', reason='ament_flake8 not installed').main_with_errors
    rc, errors = main_with_errors(argv=['yolo_jetson_ros', 'launch', 'test', 'tools', 'setup.py'])
    assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
