# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Turn raw image buffers (sensor_msgs/Image fields) into HxWx3 uint8 arrays, zero-copy if able.

Encodings follow ``sensor_msgs/image_encodings`` and cv_bridge's colour conversions:
rgb8/bgr8 are viewed in place (rows of ``step`` bytes, padding honoured); the rest are converted
with OpenCV exactly as cv_bridge's ``imgmsg_to_cv2(msg, 'bgr8')`` would.
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import cv2
import numpy as np


class ImageFormatError(ValueError):
    """The buffer cannot be an image as described; the message names the problem."""


@dataclass(frozen=True)
class _Encoding:
    channels: int
    bytes_per_channel: int
    conversion: 'int | None'  # cv2 colour code to BGR, or None for a 3-channel view
    bgr: bool = True  # channel order of the result


_YUV_CODES = {
    # ROS' 'yuv422' is UYVY (cv_bridge: COLOR_YUV2BGR_UYVY); 'yuv422_yuy2' is YUYV
    'yuv422': cv2.COLOR_YUV2BGR_UYVY,
    'uyvy': cv2.COLOR_YUV2BGR_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2BGR_YUY2,
    'yuyv': cv2.COLOR_YUV2BGR_YUY2,
}
_BAYER_CODES = {
    # OpenCV names Bayer patterns by the second row; this is cv_bridge's mapping
    'bayer_rggb8': cv2.COLOR_BayerBG2BGR,
    'bayer_bggr8': cv2.COLOR_BayerRG2BGR,
    'bayer_gbrg8': cv2.COLOR_BayerGR2BGR,
    'bayer_grbg8': cv2.COLOR_BayerGB2BGR,
}
ENCODINGS: Dict[str, _Encoding] = {
    'bgr8': _Encoding(3, 1, None, bgr=True),
    'rgb8': _Encoding(3, 1, None, bgr=False),
    'bgra8': _Encoding(4, 1, cv2.COLOR_BGRA2BGR),
    'rgba8': _Encoding(4, 1, cv2.COLOR_RGBA2BGR),
    'mono8': _Encoding(1, 1, cv2.COLOR_GRAY2BGR),
    '8UC1': _Encoding(1, 1, cv2.COLOR_GRAY2BGR),
    '8UC3': _Encoding(3, 1, None, bgr=True),
    'mono16': _Encoding(1, 2, cv2.COLOR_GRAY2BGR),
    **{name: _Encoding(2, 1, code) for name, code in _YUV_CODES.items()},
    **{name: _Encoding(1, 1, code) for name, code in _BAYER_CODES.items()},
    # NV12/NV21: a full-resolution Y plane, then interleaved half-resolution chroma (1.5 B/pixel)
    'nv12': _Encoding(1, 1, cv2.COLOR_YUV2BGR_NV12),
    'nv21': _Encoding(1, 1, cv2.COLOR_YUV2BGR_NV21),
}
# Known encodings that carry no colour image a detector can use
UNSUPPORTED_FOR_DETECTION = {
    '16UC1': 'depth, not colour: subscribe the detector to a colour image topic',
    '32FC1': 'depth, not colour: subscribe the detector to a colour image topic',
    'mono1': '1 bit per pixel, too little for detection',
}
SUPPORTED_ENCODINGS = tuple(sorted(ENCODINGS))


def _rows(data: np.ndarray, height: int, step: int, row_bytes: int) -> np.ndarray:
    """View ``height`` rows of ``row_bytes`` out of a buffer with ``step`` bytes per row."""
    return np.lib.stride_tricks.as_strided(
        data, shape=(height, row_bytes), strides=(step, 1), writeable=False
    )


def decode_image(
    data: 'bytes | memoryview | np.ndarray',
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool = False,
) -> Tuple[np.ndarray, bool]:
    """
    Return ``(image, is_bgr)``: an HxWx3 uint8 array (a view of ``data`` for bgr8/rgb8).

    Raises :class:`ImageFormatError` for unsupported encodings and for buffers inconsistent
    with ``height``, ``width`` and ``step``.
    """
    if encoding in UNSUPPORTED_FOR_DETECTION:
        raise ImageFormatError(
            f"encoding '{encoding}' is not supported for detection: "
            f'{UNSUPPORTED_FOR_DETECTION[encoding]}'
        )
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise ImageFormatError(
            f"unsupported encoding '{encoding}'; supported: " f"{', '.join(SUPPORTED_ENCODINGS)}"
        )
    if width <= 0 or height <= 0:
        raise ImageFormatError(f'empty image: width={width} height={height}')
    try:
        buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else \
            data.reshape(-1).view(np.uint8)
    except (TypeError, ValueError) as exc:  # not a byte buffer at all
        raise ImageFormatError(f'data is not a byte buffer: {exc}') from None
    planar = encoding in ('nv12', 'nv21')
    if encoding in _YUV_CODES and width % 2:  # 4 bytes carry 2 pixels: no half macropixel
        raise ImageFormatError(f'{encoding} needs an even width, got {width}x{height}')
    if planar and (width % 2 or height % 2):
        raise ImageFormatError(f'{encoding} needs even width and height, got {width}x{height}')
    rows = height * 3 // 2 if planar else height
    row_bytes = width * spec.channels * spec.bytes_per_channel
    if step < row_bytes:
        raise ImageFormatError(
            f'step {step} is smaller than width*bytes_per_pixel = {row_bytes} '
            f'({encoding}, width {width})'
        )
    expected = rows * step
    if buf.size != expected:
        kind = 'truncated' if buf.size < expected else 'too long'
        raise ImageFormatError(
            f'data has {buf.size} bytes but {rows} rows x step {step} = ' f'{expected} ({kind})'
        )
    packed = (
        _rows(buf, rows, step, row_bytes) if step != row_bytes else buf.reshape(rows, row_bytes)
    )
    if spec.conversion is None:
        return packed.reshape(height, width, 3), spec.bgr
    if spec.bytes_per_channel == 2:
        words = np.ascontiguousarray(packed).view('>u2' if is_bigendian else '<u2')
        # cv_bridge's mono16 -> bgr8: scale 255/65535 with rounding
        eight = cv2.convertScaleAbs(
            words.reshape(height, width).astype(np.float32), alpha=255.0 / 65535.0
        )
        return _convert(eight, spec.conversion, encoding), True
    src = packed.reshape(rows, width, spec.channels) if spec.channels > 1 else packed
    return _convert(src, spec.conversion, encoding), True


def _convert(src: np.ndarray, code: int, encoding: str) -> np.ndarray:
    """Run one OpenCV colour conversion; OpenCV's refusals become ImageFormatError."""
    try:
        return cv2.cvtColor(src, code)
    except cv2.error as exc:  # a size OpenCV's converter cannot take: bad input, not a crash
        reason = str(exc).strip().splitlines()[-1]
        raise ImageFormatError(f'{encoding} image of {src.shape[1]}x{src.shape[0]} cannot be '
                               f'converted: {reason}') from None
