# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""ament_pep257 docstring conventions over the package and its tests."""

import pytest


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257() -> None:
    """The package passes ament_pep257."""
    main = pytest.importorskip('ament_pep257.main', reason='ament_pep257 not installed').main
    rc = main(argv=['yolo_jetson_ros', 'launch', 'test', 'tools'])
    assert rc == 0, 'Found code style errors / warnings'
