# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The non-bgr8 encodings of pipeline/image_codec against OpenCV and against cv_bridge.

The OpenCV comparisons always run; the cv_bridge ones only where ROS 2's cv_bridge is installed.
"""

from typing import Tuple

import cv2
import numpy as np
import pytest
from yolo_jetson_ros.pipeline.image_codec import decode_image, ImageFormatError

H, W = 48, 64


def _bgr() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (H, W, 3), np.uint8)


def _yuv422(bgr: np.ndarray, uyvy: bool) -> np.ndarray:
    """Pack a BGR image into UYVY or YUYV bytes (H x W*2)."""
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    y, u, v = yuv[..., 0], yuv[..., 1], yuv[..., 2]
    u2 = ((u[:, 0::2].astype(np.uint16) + u[:, 1::2]) // 2).astype(np.uint8)
    v2 = ((v[:, 0::2].astype(np.uint16) + v[:, 1::2]) // 2).astype(np.uint8)
    out = np.empty((H, W * 2), np.uint8)
    if uyvy:
        out[:, 0::4], out[:, 1::4], out[:, 2::4], out[:, 3::4] = u2, y[:, 0::2], v2, y[:, 1::2]
    else:
        out[:, 0::4], out[:, 1::4], out[:, 2::4], out[:, 3::4] = y[:, 0::2], u2, y[:, 1::2], v2
    return out


def _samples() -> dict:
    """Return encoding -> (raw HxS array, expected BGR by a direct OpenCV conversion)."""
    bgr = _bgr()
    mono16 = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 21)
    nv12 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # I420 -> NV12 by interleaving U and V
    y, u, v = nv12[:H], nv12[H:H + H // 4].reshape(-1), nv12[H + H // 4:].reshape(-1)
    nv12 = np.concatenate([y.reshape(-1), np.stack([u, v], 1).reshape(-1)]).reshape(-1, W)
    bayer = bgr[..., 1].copy()
    uyvy, yuyv = _yuv422(bgr, True), _yuv422(bgr, False)
    scaled = cv2.convertScaleAbs(mono16.astype(np.float32), alpha=255.0 / 65535.0)
    return {
        'rgb8': (bgr[..., ::-1].copy(), bgr),
        'bgra8': (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), bgr),
        'rgba8': (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), bgr),
        'mono8': (bgr[..., 0].copy(), cv2.cvtColor(bgr[..., 0], cv2.COLOR_GRAY2BGR)),
        'mono16': (mono16, cv2.cvtColor(scaled, cv2.COLOR_GRAY2BGR)),
        'yuv422': (uyvy, cv2.cvtColor(uyvy.reshape(H, W, 2), cv2.COLOR_YUV2BGR_UYVY)),
        'uyvy': (uyvy, cv2.cvtColor(uyvy.reshape(H, W, 2), cv2.COLOR_YUV2BGR_UYVY)),
        'yuv422_yuy2': (yuyv, cv2.cvtColor(yuyv.reshape(H, W, 2), cv2.COLOR_YUV2BGR_YUY2)),
        'yuyv': (yuyv, cv2.cvtColor(yuyv.reshape(H, W, 2), cv2.COLOR_YUV2BGR_YUY2)),
        'nv12': (nv12, cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)),
        'bayer_rggb8': (bayer, cv2.cvtColor(bayer, cv2.COLOR_BayerBG2BGR)),
        'bayer_bggr8': (bayer, cv2.cvtColor(bayer, cv2.COLOR_BayerRG2BGR)),
        'bayer_gbrg8': (bayer, cv2.cvtColor(bayer, cv2.COLOR_BayerGR2BGR)),
        'bayer_grbg8': (bayer, cv2.cvtColor(bayer, cv2.COLOR_BayerGB2BGR)),
    }


SAMPLES = _samples()


def _decode(encoding: str, raw: np.ndarray) -> Tuple[np.ndarray, bool]:
    step = raw.shape[1] * raw.dtype.itemsize * (raw.shape[2] if raw.ndim == 3 else 1)
    return decode_image(raw.tobytes(), encoding, H, W, step)


@pytest.mark.parametrize('encoding', sorted(SAMPLES))
def test_matches_direct_opencv_conversion(encoding: str) -> None:
    raw, expected = SAMPLES[encoding]
    image, is_bgr = _decode(encoding, raw)
    bgr = image if is_bgr else image[..., ::-1]
    assert bgr.shape == (H, W, 3) and bgr.dtype == np.uint8
    np.testing.assert_array_equal(bgr, expected)


def test_depth_16uc1_is_rejected_with_a_reason() -> None:
    with pytest.raises(ImageFormatError, match='depth, not colour'):
        decode_image(np.zeros((H, W), np.uint16).tobytes(), '16UC1', H, W, W * 2)


@pytest.mark.parametrize('encoding', sorted(SAMPLES))
def test_matches_cv_bridge(encoding: str) -> None:
    cv_bridge = pytest.importorskip('cv_bridge', reason='cv_bridge not installed')
    from sensor_msgs.msg import Image
    raw, _ = SAMPLES[encoding]
    step = raw.shape[1] * raw.dtype.itemsize * (raw.shape[2] if raw.ndim == 3 else 1)
    msg = Image(height=H, width=W, encoding=encoding, step=step, is_bigendian=0)
    msg.data = raw.tobytes()
    try:
        expected = cv_bridge.CvBridge().imgmsg_to_cv2(msg, 'bgr8')
    except cv_bridge.CvBridgeError as exc:  # e.g. an old cv_bridge without nv12
        pytest.skip(f'this cv_bridge cannot convert {encoding}: {exc}')
    image, is_bgr = _decode(encoding, raw)
    bgr = image if is_bgr else image[..., ::-1]
    # cv_bridge may use other rounding for mono16 and YUV: allow 1 grey level
    assert np.abs(bgr.astype(np.int16) - expected.astype(np.int16)).max() <= 1
