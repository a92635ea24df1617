# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Counters and latency percentiles for diagnostics and the benchmark (no ROS)."""

import collections
from dataclasses import dataclass
import threading
import time
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np


class LatencyWindow:
    """The last ``size`` latencies in milliseconds, with percentiles."""

    def __init__(self, size: int = 1000):
        self._values: Deque[float] = collections.deque(maxlen=size)

    def add(self, ms: float) -> None:
        """Record one latency."""
        self._values.append(ms)

    def percentiles(self, *qs: float) -> Tuple[float, ...]:
        """Compute the requested percentiles; NaN while empty."""
        if not self._values:
            return tuple(float('nan') for _ in qs)
        arr = np.fromiter(self._values, np.float64, len(self._values))
        return tuple(float(v) for v in np.percentile(arr, qs))

    def __len__(self) -> int:
        """Return how many latencies are held."""
        return len(self._values)


class RateMeter:
    """Events per second over a sliding window of timestamps."""

    def __init__(self, window_s: float = 5.0):
        self._window_s = window_s
        self._stamps: Deque[float] = collections.deque()

    def tick(self, now: Optional[float] = None) -> None:
        """Record one event."""
        now = time.monotonic() if now is None else now
        self._stamps.append(now)
        self._trim(now)

    def rate(self, now: Optional[float] = None) -> float:
        """Return events per second over the window."""
        now = time.monotonic() if now is None else now
        self._trim(now)
        return len(self._stamps) / self._window_s

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] > self._window_s:
            self._stamps.popleft()


class LogThrottle:
    """
    Decide cheaply whether a repeated message is due again (at most once per ``period_s``).

    rclpy's ``throttle_duration_sec`` inspects the caller's frame on every call, ~0.35 ms even
    when the message is suppressed; per-frame warnings checked here first cost a clock read.
    """

    def __init__(self, period_s: float = 5.0):
        self.period_s = period_s
        self._last: Dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key: str, now: Optional[float] = None) -> bool:
        """Return True (and restart the period) when ``key`` was not logged in the period."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return False
            self._last[key] = now
            return True


# Header anomalies :meth:`FrameCounters.check_header` counts, with the warning for each
HEADER_WARNINGS = {
    'empty_frame_id': 'has an empty header.frame_id: its detections cannot be placed in tf',
    'stamp_backwards': "has a header.stamp older than the previous frame's (a bag restarting "
                       'or looping, a clock jump, or use_sim_time mismatched)',
}


@dataclass
class CounterSnapshot:
    """A copy of the counters at one instant."""

    received: int
    processed: int
    dropped: int
    bad_input: int
    inference_errors: int
    last_error: str


class FrameCounters:
    """Thread-safe frame counters shared by the worker and the diagnostics timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = collections.Counter()
        self.last_error = ''
        self.latency = LatencyWindow()  # frame taken -> detections published
        self.queue_wait = LatencyWindow()  # frame taken -> inference started (batch window)
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self._last_stamp_ns: Optional[int] = None

    def add(self, name: str, n: int = 1) -> None:
        """Increase counter ``name``."""
        with self._lock:
            self._counts[name] += n
            if name == 'received':
                self.input_rate.tick()
            elif name == 'processed':
                self.output_rate.tick()

    def error(self, name: str, message: str) -> None:
        """Count an error and remember its message."""
        with self._lock:
            self._counts[name] += 1
            self.last_error = message

    def count(self, name: str) -> int:
        """Return the value of counter ``name`` (0 when never counted)."""
        with self._lock:
            return self._counts[name]

    def as_dict(self) -> Dict[str, int]:
        """Return a copy of every counter, by name."""
        with self._lock:
            return dict(self._counts)

    def check_header(self, frame_id: str, stamp_ns: int) -> List[str]:
        """
        Count the header anomalies of one frame of this source; return their counter names.

        Neither anomaly makes the frame unusable (the detections keep the header as it came),
        but both deserve a warning: see :data:`HEADER_WARNINGS`.
        """
        found = []
        with self._lock:
            if not frame_id:
                found.append('empty_frame_id')
            if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
                found.append('stamp_backwards')
            self._last_stamp_ns = stamp_ns
            for name in found:
                self._counts[name] += 1
        return found

    def snapshot(self) -> CounterSnapshot:
        """Return a consistent copy of the counters."""
        with self._lock:
            c = self._counts
            return CounterSnapshot(
                c['received'],
                c['processed'],
                c['dropped'],
                c['bad_input'],
                c['inference_errors'],
                self.last_error,
            )
