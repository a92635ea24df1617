# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""The node's health as diagnostic_msgs/DiagnosticStatus, computed from :class:`FrameCounters`."""

from dataclasses import dataclass
import math
from typing import Optional

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..stats import CounterSnapshot, FrameCounters

DROP_WARN_FRACTION = 0.10  # WARN when more than this share of the period's frames was dropped


@dataclass
class DetectorDescription:
    """What runs, for the diagnostics' key/values (empty strings while unconfigured)."""

    backend: str = ''
    device: str = ''
    precision: str = ''
    model: str = ''


class HealthReporter:
    """Turn counter snapshots into one DiagnosticStatus per period (differences since the last)."""

    def __init__(self, name: str, hardware_id: str = '') -> None:
        self.name = name
        self.hardware_id = hardware_id
        self._last: Optional[CounterSnapshot] = None

    def status(self, counters: FrameCounters, state: str, describe: DetectorDescription,
               failure: str = '') -> DiagnosticStatus:
        """
        Return the status for this period.

        ``state`` is the lifecycle state label; ``failure`` a reason why the node is not running
        although it should (ERROR).
        """
        snap = counters.snapshot()
        last = self._last or CounterSnapshot(0, 0, 0, 0, 0, '')
        self._last = snap
        received = snap.received - last.received
        dropped = snap.dropped - last.dropped
        errors = (snap.bad_input - last.bad_input) + (snap.inference_errors
                                                      - last.inference_errors)
        p50, p99 = counters.latency.percentiles(50, 99)
        level, message = DiagnosticStatus.OK, state
        if failure:
            level, message = DiagnosticStatus.ERROR, failure
        elif state == 'active':
            problems = []
            if received and dropped / received > DROP_WARN_FRACTION:
                problems.append(f'dropping {100.0 * dropped / received:.0f}% of frames '
                                '(inference slower than the camera)')
            if errors:
                problems.append(f'{errors} frame errors: {snap.last_error}')
            if problems:
                level, message = DiagnosticStatus.WARN, '; '.join(problems)
            else:
                message = 'active, detecting' if received else 'active, waiting for images'
        status = DiagnosticStatus(level=level, name=self.name, message=message,
                                  hardware_id=self.hardware_id or describe.model)
        values = {
            'state': state,
            'input_rate_hz': f'{counters.input_rate.rate():.2f}',
            'processed_rate_hz': f'{counters.output_rate.rate():.2f}',
            'frames_received': str(snap.received),
            'frames_processed': str(snap.processed),
            'frames_dropped': str(snap.dropped),
            'bad_input': str(snap.bad_input),
            'inference_errors': str(snap.inference_errors),
            'latency_p50_ms': _fmt(p50),
            'latency_p99_ms': _fmt(p99),
            # of that latency, frames parked before inference (a batch window waiting for cameras)
            'queue_wait_p50_ms': _fmt(counters.queue_wait.percentiles(50)[0]),
            'backend': describe.backend,
            'device': describe.device,
            'precision': describe.precision,
            'model': describe.model,
            'last_error': snap.last_error,
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status


def _fmt(ms: float) -> str:
    return '' if math.isnan(ms) else f'{ms:.1f}'
