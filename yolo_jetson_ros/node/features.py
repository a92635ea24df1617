# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The detector node's outputs beyond detections: LabelInfo, debug image, diagnostics, tracking.

A mixin of :class:`~yolo_jetson_ros.node.detector_node.YoloDetectorNode`, kept apart so the frame
path in the node stays short. It uses the node's ``param()``, ``_detector``, ``_cameras``,
``counters`` and its running/configured flags.
"""

from typing import Any, Dict, Optional, Tuple, Type

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from .annotate import draw_detections
from .conversions import array_to_image, HAVE_LABEL_INFO, label_info_msg, LabelInfo
from .diagnostics import DetectorDescription, HealthReporter
from .tracking import Tracker, TrackerError
from ..pipeline.detections import Detections

LABEL_INFO_TOPIC = 'label_info'
DEBUG_IMAGE_TOPIC = 'detections_image'
DIAGNOSTICS_TOPIC = '/diagnostics'
DIAGNOSTICS_PERIOD_S = 1.0
# latched: a subscriber that joins later still gets the class names
LABEL_INFO_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                            durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
DEBUG_IMAGE_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT)


def debug_image_topic(output_topic: str, single_output_topic: str) -> str:
    """Return a camera's debug image topic: 'detections_image' or '<input>/detections_image'."""
    if output_topic == single_output_topic:
        return DEBUG_IMAGE_TOPIC
    return output_topic.rsplit('/', 1)[0] + '/' + DEBUG_IMAGE_TOPIC


class RosFeaturesMixin:
    """LabelInfo, annotated debug image, /diagnostics and per-camera tracking for the node."""

    def _init_features(self) -> None:
        """Create the diagnostics publisher and its 1 Hz timer (they run in every state)."""
        self._label_info_pub: Any = None
        self._warned_no_label_info = False
        self._health = HealthReporter(f'{self.get_fully_qualified_name()}: yolo detector')
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S,
                                                    self._publish_diagnostics)

    # ------------------------------------------------------------------ configure / cleanup
    def _configure_features(self, single_output_topic: str) -> Optional[str]:
        """Create LabelInfo, debug image publishers and trackers; return why not, or None."""
        kind = self.param('tracker')
        for cam in self._cameras:
            if kind != 'none':
                try:
                    cam.tracker = Tracker(kind)
                except TrackerError as exc:
                    return f'tracker: {exc}'
                except Exception as exc:  # e.g. lap missing: Ultralytics tries to pip-install it
                    return (f'tracker: cannot create the {kind} tracker ({type(exc).__name__}: '
                            f'{exc}); pip install "lap>=0.5.12" or set tracker none')
            cam.debug_publisher = self.create_lifecycle_publisher(
                Image, debug_image_topic(cam.output_topic, single_output_topic), DEBUG_IMAGE_QOS)
        if HAVE_LABEL_INFO:
            self._label_info_pub = self.create_publisher(LabelInfo, LABEL_INFO_TOPIC,
                                                         LABEL_INFO_QOS)
            self._publish_label_info()
        elif not self._warned_no_label_info:
            self._warned_no_label_info = True
            self.get_logger().warning(
                'this vision_msgs has no LabelInfo (4.0.0): class names are not published; '
                'upgrade to vision_msgs >= 4.1 (ros-<distro>-vision-msgs) to get label_info')
        return None

    def _release_features(self) -> None:
        """Destroy what :meth:`_configure_features` created."""
        for cam in self._cameras:
            if cam.debug_publisher is not None:
                self.destroy_lifecycle_publisher(cam.debug_publisher)
                cam.debug_publisher = None
            cam.tracker = None
        if self._label_info_pub is not None:
            self.destroy_publisher(self._label_info_pub)
            self._label_info_pub = None

    def _input_type_and_topic(self, input_topic: str) -> Tuple[Type[Any], str]:
        """Return the message type and topic to subscribe for ``input_transport``."""
        if self.param('input_transport') == 'compressed':
            # image_transport's naming: the compressed stream of 'image' is 'image/compressed',
            # after remapping the base name
            return CompressedImage, self.resolve_topic_name(input_topic) + '/compressed'
        return Image, input_topic

    # ------------------------------------------------------------------ live parameters
    def _on_live_change(self, values: Dict[str, Any]) -> None:
        """Re-publish LabelInfo when the confidence threshold changes."""
        if 'conf' in values:
            self._publish_label_info(float(values['conf']))

    def _publish_label_info(self, conf: Optional[float] = None) -> None:
        """Publish the class map and threshold (latched) when configured."""
        if self._label_info_pub is None or self._detector is None:
            return
        header = Header()
        header.stamp = self.get_clock().now().to_msg()
        threshold = self.param('conf') if conf is None else conf
        self._label_info_pub.publish(label_info_msg(self._detector.names, threshold, header))

    # ------------------------------------------------------------------ per frame
    def _track(self, cam: Any, detections: Detections, image: np.ndarray,
               is_bgr: bool) -> Detections:
        """Return ``detections`` with track ids when this camera has a tracker."""
        if cam.tracker is None:
            return detections
        frame = None
        if cam.tracker.kind == 'botsort':  # its motion compensation looks at the frame (BGR)
            frame = image if is_bgr else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return cam.tracker.update(detections, frame)

    def _publish_debug_image(self, cam: Any, header: Header, image: np.ndarray, is_bgr: bool,
                             detections: Detections) -> None:
        """Draw and publish the annotated frame, only when enabled and someone listens."""
        pub = cam.debug_publisher
        if pub is None or not self.param('publish_debug_image'):
            return
        if pub.get_subscription_count() == 0:
            return
        names = self._detector.names if self._detector is not None else {}
        pub.publish(array_to_image(draw_detections(image, detections, names, is_bgr), header))

    # ------------------------------------------------------------------ diagnostics
    def _lifecycle_label(self) -> str:
        if self._active:
            return 'active'
        return 'inactive' if self._configured else 'unconfigured'

    def _publish_diagnostics(self) -> None:
        """Timer: publish one DiagnosticArray with the node's health."""
        describe = DetectorDescription()
        detector = self._detector
        if detector is not None:
            describe = DetectorDescription(detector.backend.name, detector.backend.device,
                                           detector.backend.precision, detector.model.path.name)
        state = self._lifecycle_label()
        failure = ''
        if self.param('autostart') and state != 'active':
            failure = (f'autostart is set but the node is {state}: configure/activate failed, '
                       'see the log for the reason')
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self._health.status(self.counters, state, describe, failure)]
        self._diagnostics_pub.publish(msg)
