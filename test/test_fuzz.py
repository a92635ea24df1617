# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Property-based fuzzing of the image decoder and of parameter validation (hypothesis).

``decode_image`` must return a correct HxWx3 uint8 image or raise ``ImageFormatError``, never any
other exception, whatever encoding, size, step or buffer it is handed. ``check_value`` and
``parse_classes`` validate values from the outside world (parameter services, YAML files): the
first must never raise (it returns a reason or None), the second only ``ValueError``.
"""

import array
from typing import Any, Optional

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from yolo_jetson_ros.parameters import BY_NAME, check_value, PARAMETERS, parse_classes
from yolo_jetson_ros.pipeline.image_codec import (decode_image, ENCODINGS, ImageFormatError,
                                                  UNSUPPORTED_FOR_DETECTION)

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KNOWN = sorted(ENCODINGS) + sorted(UNSUPPORTED_FOR_DETECTION)
# Mostly real encodings (where the conversions are), sometimes near misses and garbage
encodings = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.sampled_from(KNOWN),
                      st.sampled_from(KNOWN).map(str.upper), st.text(max_size=12), st.just(''))


def _bytes_per_pixel(encoding: str) -> float:
    spec = ENCODINGS.get(encoding)
    if spec is None:
        return 1
    return spec.channels * spec.bytes_per_channel


@st.composite
def image_fields(draw: Any) -> Any:
    """Draw (data, encoding, height, width, step, is_bigendian), mostly close to consistent."""
    encoding = draw(encodings)
    height = draw(st.one_of(st.integers(1, 24), st.integers(-3, 0), st.integers(1, 4096)))
    width = draw(st.one_of(st.integers(1, 24), st.integers(-3, 0), st.integers(1, 4096)))
    row_bytes = int(max(width, 0) * _bytes_per_pixel(encoding))
    step = draw(st.one_of(st.just(row_bytes), st.just(row_bytes),
                          st.integers(row_bytes, row_bytes + 9),
                          st.integers(-4, row_bytes + 2), st.integers(0, 1 << 40)))
    rows = max(height, 0) * 3 // 2 if encoding in ('nv12', 'nv21') else max(height, 0)
    exact = rows * step
    if exact < 0 or exact > 1 << 18:
        exact = draw(st.integers(0, 4096))
    length = draw(st.one_of(st.just(exact), st.just(exact),
                            st.integers(max(0, exact - 3), exact + 3), st.integers(0, 4096)))
    if length > 1 << 18:
        length = 1 << 18
    data = draw(st.binary(min_size=min(length, 64), max_size=min(length, 64)))
    data = (data * (length // max(len(data), 1) + 1))[:length] if data else bytes(length)
    container = draw(st.sampled_from(('bytes', 'array', 'memoryview', 'ndarray')))
    if container == 'array':
        data = array.array('B', data)
    elif container == 'memoryview':
        data = memoryview(data)
    elif container == 'ndarray':
        data = np.frombuffer(data, np.uint8)
    return data, encoding, height, width, step, draw(st.booleans())


@FUZZ
@given(image_fields())
def test_decode_image_returns_an_image_or_a_format_error(fields: Any) -> None:
    """A correct HxWx3 uint8 array with the message's size, or ImageFormatError; nothing else."""
    data, encoding, height, width, step, big = fields
    try:
        image, is_bgr = decode_image(data, encoding, height, width, step, big)
    except ImageFormatError as exc:
        assert str(exc), 'an ImageFormatError must say what is wrong'
        return
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)
    assert isinstance(is_bgr, bool)


@FUZZ
@given(st.sampled_from(sorted(ENCODINGS)), st.integers(1, 12).map(lambda n: 2 * n),
       st.integers(1, 12).map(lambda n: 2 * n), st.integers(0, 7), st.randoms())
def test_decode_image_accepts_every_consistent_buffer(encoding: str, height: int, width: int,
                                                      padding: int, rnd: Any) -> None:
    """Every supported encoding decodes any consistent buffer (padding honoured) to HxWx3."""
    spec = ENCODINGS[encoding]
    row_bytes = width * spec.channels * spec.bytes_per_channel
    step = row_bytes + padding
    rows = height * 3 // 2 if encoding in ('nv12', 'nv21') else height
    data = bytes(rnd.getrandbits(8) for _ in range(rows * step))
    image, _ = decode_image(data, encoding, height, width, step)
    assert image.shape == (height, width, 3) and image.dtype == np.uint8


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
@pytest.mark.parametrize('height,width', [(1, 1), (1, 2), (2, 1), (1, 7), (3, 1), (3, 5)])
def test_decode_image_tiny_and_odd_sizes(encoding: str, height: int, width: int) -> None:
    """1-pixel and odd sizes, where colour conversions have their limits, never crash."""
    spec = ENCODINGS[encoding]
    step = width * spec.channels * spec.bytes_per_channel
    rows = height * 3 // 2 if encoding in ('nv12', 'nv21') else height
    try:
        image, _ = decode_image(bytes(rows * step), encoding, height, width, step)
    except ImageFormatError as exc:
        assert encoding in str(exc) or 'even' in str(exc) or 'too small' in str(exc)
        return
    assert image.shape == (height, width, 3)


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
              st.binary(max_size=8)),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children),
    max_leaves=8)


@FUZZ
@given(st.sampled_from([spec.name for spec in PARAMETERS]), values)
def test_check_value_never_raises(name: str, value: Any) -> None:
    """check_value returns a reason (str) or None for any value of any type."""
    reason: Optional[str] = check_value(BY_NAME[name], value)
    assert reason is None or (isinstance(reason, str) and reason)


@FUZZ
@given(st.sampled_from([spec.name for spec in PARAMETERS]),
       st.sampled_from(['', 'nan', 'inf', '-1', '1e400', ' ', '\x00', 'cuda:99999999999', '٣٢']))
def test_check_value_strings_never_raise(name: str, value: str) -> None:
    """Strings that look like numbers (or NUL, non-ASCII digits) are reasons, not crashes."""
    reason = check_value(BY_NAME[name], value)
    assert reason is None or isinstance(reason, str)


@FUZZ
@given(values)
def test_parse_classes_only_raises_value_error(value: Any) -> None:
    """parse_classes returns a list of ints >= 0 and non-empty names, or raises ValueError."""
    try:
        out = parse_classes(value)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(out, list)
    for item in out:
        assert (isinstance(item, int) and not isinstance(item, bool) and item >= 0) or \
            (isinstance(item, str) and item)


@FUZZ
@given(values)
def test_classes_check_matches_parse(value: Any) -> None:
    """The classes parameter is refused with a reason exactly when parse_classes refuses it."""
    try:
        parse_classes(value)
        parses = True
    except ValueError:
        parses = False
    reason = check_value(BY_NAME['classes'], value)
    assert (reason is None) == parses
