# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The YOLO detector lifecycle node.

configure: resolve the model, build or load the backend (ONNX export / TensorRT engine from the
cache), allocate buffers, warm up. activate: subscribe to the image topic(s) and publish
vision_msgs/Detection2DArray. One worker thread takes the frames from the image subscriptions
itself (see :mod:`.frame_taker`: the executor never sees them), so the executor stays free for
services and parameters while inference runs, and no hand-off between threads sits on the frame
path. The subscriptions keep one frame (history depth 1): the newest frame always wins, and frames
replaced before the worker took them are counted as dropped where the middleware reports the
publisher's sequence numbers (Jazzy and later). The worker is started at the first configure
and lives as long as the node. On CUDA it also runs the warm-up, because torch keeps cuDNN plans
and cuBLAS handles per thread; CPU backends warm up on the configure thread (measured: a CPU
warm-up on the worker made RSS creep over configure/cleanup cycles, allocator arenas).
"""

from dataclasses import dataclass, field
import gc
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
import rclpy
from rclpy.exceptions import InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import qos_profile_sensor_data, QoSProfile, QoSReliabilityPolicy
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]

from .conversions import class_names_summary, DetectionArrayBuilder, message_to_array
from .detection_cdr import DetectionArraySerializer, matches_rclpy
from .features import RosFeaturesMixin
from .frame_taker import publication_sequence, SubscriptionWaiter, WorkerTakenGroup
from ..parameters import (
    BY_NAME, check_value, PARAMETERS, ParamSpec, parse_classes, resolve_classes
)
from ..pipeline.backends.tensorrt_backend import dla_core_count, validate_tensorrt_request
from ..pipeline.detector import build_detector, ConfigurationError, Detector, DetectorConfig
from ..pipeline.image_codec import ImageFormatError
from ..pipeline.postprocess import NmsSettings
from ..stats import FrameCounters, HEADER_WARNINGS, LogThrottle

NODE_NAME = 'yolo_detector'
WAIT_SLICE_S = 0.5  # the worker re-checks its state at least this often
PUBLISHER_CHECK_S = 1.0  # how long a topic's publisher count is trusted (drop counting)
SINGLE_OUTPUT_TOPIC = 'detections_output'  # Isaac ROS' name for the decoder output
DETECTIONS_QOS = QoSProfile(depth=10)  # reliable: every kind of subscriber can connect


@dataclass
class Camera:
    """One input topic, its output publisher and its one-deep frame slot."""

    input_topic: str
    output_topic: str
    publisher: Optional[Publisher] = None
    subscription: Optional[Subscription] = None
    pending: Optional[Any] = None  # sensor_msgs/Image or CompressedImage
    pending_since: float = 0.0
    last_sequence: Optional[int] = None  # the last taken frame's publication sequence number
    single_publisher: bool = False  # sequence gaps are drops only with one publisher
    publishers_checked: float = -1e9  # monotonic time of the last publisher count
    counters: FrameCounters = field(default_factory=FrameCounters)
    debug_publisher: Optional[Publisher] = None
    tracker: Optional[Any] = None  # tracking.Tracker when the tracker parameter is set
    messages: DetectionArrayBuilder = field(default_factory=DetectionArrayBuilder)


class YoloDetectorNode(RosFeaturesMixin, LifecycleNode):
    """Lifecycle node: sensor_msgs/Image in, vision_msgs/Detection2DArray out."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        # Typed attributes before super().__init__, as rclpy may call back into the node early
        self._detector: Optional[Detector] = None
        self._settings = NmsSettings()
        self._cameras: List[Camera] = []
        self._worker: Optional[threading.Thread] = None
        self._frame_ready = threading.Condition()
        self._worker_alive = False  # first configure .. stop()
        self._jobs: List[Tuple[Callable[[], None], threading.Event, Dict[str, str]]] = []
        self._active = False  # subscribed (activate .. deactivate)
        self._busy = False  # the worker is processing frames it took
        self._waiter: Optional[SubscriptionWaiter] = None  # the image subscriptions, while active
        self._in_waiter = False  # the worker waits on or takes from the subscriptions
        self._image_group = WorkerTakenGroup()
        # results are published serialized where the writer matches rclpy's own serialization
        self._serializer: Optional[DetectionArraySerializer] = None
        self._configured = False
        self.counters = FrameCounters()
        self._log_throttle = LogThrottle(5.0)
        super().__init__(node_name, **kwargs)
        for spec in PARAMETERS:
            self._declare(spec)
        self._init_features()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ parameters
    def _declare(self, spec: ParamSpec) -> None:
        """Declare one parameter; a bad value from a parameter file falls back to the default."""
        descriptor = _descriptor(spec)
        try:
            value = self.declare_parameter(spec.name, spec.default, descriptor).value
            reason = check_value(spec, value)  # overrides bypass the on-set callback
        except InvalidParameterValueException as exc:  # out of the declared range
            reason = str(exc)
        if reason is None:
            return
        self.get_logger().error(f'parameter {spec.name}: {reason}; using the default '
                                f'{spec.default!r} instead (fix the parameter file)')
        if self.has_parameter(spec.name):
            self.undeclare_parameter(spec.name)
        self.declare_parameter(spec.name, spec.default, descriptor, ignore_override=True)

    def param(self, name: str) -> Any:
        """Return the current value of one of our parameters."""
        return self.get_parameter(name).value

    def _on_set_parameters(self, params: List[Parameter]) -> SetParametersResult:
        """Validate a parameter change (all or nothing) and apply live thresholds."""
        proposed = {p.name: p.value for p in params}
        for p in params:
            spec = BY_NAME.get(p.name)
            if spec is None:
                continue
            reason = check_value(spec, p.value)
            if reason is None and spec.structural and self._configured:
                reason = (
                    'decides what is built at configure; deactivate and clean up, then '
                    'set it and configure again'
                )
            if reason is None and p.name == 'classes' and self._detector is not None:
                try:
                    resolve_classes(parse_classes(p.value), self._detector.names)
                except ValueError as exc:
                    reason = str(exc)
            if reason is not None:
                return SetParametersResult(successful=False, reason=f'{p.name}: {reason}')
        reason = self._check_combination(proposed)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        self._apply_live(proposed)
        return SetParametersResult(successful=True)

    def _check_combination(self, proposed: Dict[str, Any]) -> Optional[str]:
        """Reject combinations of structural values that can never build on this machine."""

        def value(name: str) -> Any:
            return proposed[name] if name in proposed else self.param(name)

        backend, precision, dla_core = value('backend'), value('precision'), value('dla_core')
        if backend not in ('auto', 'tensorrt'):
            if dla_core >= 0:
                return f'dla_core: DLA needs the tensorrt backend (backend is {backend})'
            if precision == 'int8':
                return f'precision: int8 needs the tensorrt backend (backend is {backend})'
            return None
        reason = validate_tensorrt_request('fp16' if precision == 'auto' else precision, dla_core,
                                           value('int8_calibration_data'), dla_core_count())
        return None if reason is None else f'TensorRT: {reason}'

    def _apply_live(self, values: Dict[str, Any]) -> None:
        s = self._settings
        if 'conf' in values:
            s.conf = float(values['conf'])
        if 'iou' in values:
            s.iou = float(values['iou'])
        if 'max_det' in values:
            s.max_det = int(values['max_det'])
        if 'agnostic_nms' in values:
            s.agnostic = bool(values['agnostic_nms'])
        if 'classes' in values and self._detector is not None:
            s.classes = resolve_classes(parse_classes(values['classes']), self._detector.names)
        self._on_live_change(values)

    def _detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            model=self.param('model'),
            model_dir=self.param('model_dir'),
            model_sha256=self.param('model_sha256'),
            backend=self.param('backend'),
            device=self.param('device'),
            precision=self.param('precision'),
            imgsz=self.param('imgsz'),
            batch=self.param('batch'),
            cache_dir=self.param('engine_cache_dir'),
            threads=self.param('threads'),
            force_rebuild=self.param('force_engine_rebuild'),
            dla_core=self.param('dla_core'),
            workspace_gb=self.param('workspace_gb'),
            int8_calibration_data=self.param('int8_calibration_data'),
            nms_free=self.param('nms_free'),
            compile_postprocess=self.param('compile_postprocess'),
        )

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the detector and the publishers; FAILURE (back to unconfigured) with a reason."""
        t0 = time.monotonic()
        log = self.get_logger()
        config = self._detector_config()
        log.info(
            f'configuring: model={config.model} backend={config.backend} '
            f'precision={config.precision} imgsz={config.imgsz}'
        )
        try:
            detector = build_detector(config, log=log.info, warm_up=False)
        except ConfigurationError as exc:
            log.error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        try:
            classes = resolve_classes(parse_classes(self.param('classes')), detector.names)
        except ValueError as exc:
            detector.close()
            log.error(f'configure failed: classes: {exc}')
            return TransitionCallbackReturn.FAILURE
        self._detector = detector
        self._settings = NmsSettings(
            conf=self.param('conf'),
            iou=self.param('iou'),
            max_det=self.param('max_det'),
            classes=classes,
            agnostic=self.param('agnostic_nms'),
        )
        detector.settings = self._settings
        self._cameras = [Camera(i, o) for i, o in camera_topics(self.param('image_topics'))]
        for cam in self._cameras:
            cam.publisher = self.create_lifecycle_publisher(
                Detection2DArray, cam.output_topic, DETECTIONS_QOS
            )
        serializer = DetectionArraySerializer()
        self._serializer = serializer if matches_rclpy(serializer) else None
        if self._serializer is None:
            log.warning('this middleware serializes Detection2DArray differently from the '
                        "node's writer: publishing through rclpy's message conversion, "
                        'which costs ~10 us more per detection')
        reason = self._configure_features(SINGLE_OUTPUT_TOPIC)
        if reason is None:
            reason = self._warm_up(detector)
        if reason is not None:
            log.error(f'configure failed: {reason}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._configured = True
        # Hundreds of thousands of long-lived objects (torch, Ultralytics, the model) make every
        # full garbage collection a ~100 ms stop of all threads; freezing them after configure
        # keeps such pauses out of the frame loop. cleanup unfreezes so the old model can go.
        gc.collect()
        gc.freeze()
        log.info(
            f'configured in {time.monotonic() - t0:.1f} s: {detector.backend.describe()}; '
            f'{class_names_summary(detector.names)}; '
            + '; '.join(f'{c.input_topic} -> {c.output_topic}' for c in self._cameras)
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the cameras; the worker (already running) takes their frames."""
        qos = image_qos(self.param('qos_reliability'))
        subscriptions = []
        for cam in self._cameras:
            cam.last_sequence = None
            cam.publishers_checked = -1e9
            cam.subscription = self.create_subscription(
                *self._input_type_and_topic(cam.input_topic),
                lambda msg, c=cam: self._on_image(c, msg),  # only if an executor ignores the group
                qos,
                callback_group=self._image_group,
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=lambda event, c=cam: self._on_incompatible_qos(c, event)
                ),
            )
            subscriptions.append(cam.subscription)
        with self._frame_ready:
            self._waiter = SubscriptionWaiter(self.context, subscriptions)  # camera order
            self._active = True
            self._frame_ready.notify_all()
        self.get_logger().info(
            'active: waiting for images on '
            + ', '.join(self.resolve_topic_name(c.input_topic) for c in self._cameras)
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking frames; the detector and its worker stay ready."""
        self._stop_inputs()
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the backend and the publishers."""
        self._release()
        self.get_logger().info('cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from any state."""
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after an exception in a transition."""
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Stop the worker and free every resource (idempotent; used at process exit too)."""
        self._stop_inputs()
        self._release()
        self._stop_worker()

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node."""
        self.stop()
        super().destroy_node()

    def _warm_up(self, detector: Detector) -> Optional[str]:
        """Warm the detector up on the thread that suits its device; return why it failed."""
        if detector.backend.device.startswith('cuda'):
            error = self._run_on_worker(detector.warm_up)
            return None if error is None else f'warm-up failed: {error}'
        try:
            detector.warm_up()
        except Exception as exc:  # a model that cannot run: configure fails with it
            return f'warm-up failed: {type(exc).__name__}: {exc}'
        self._ensure_worker()
        return None

    def _ensure_worker(self) -> threading.Thread:
        """Start the worker thread unless it runs; return it."""
        with self._frame_ready:
            if self._worker is None:
                self._worker_alive = True
                self._worker = threading.Thread(target=self._run_worker, name='yolo_worker',
                                                daemon=True)
                self._worker.start()
            return self._worker

    def _run_on_worker(self, job: Callable[[], None]) -> Optional[str]:
        """Run ``job`` on the worker thread (started on first use); return its error, if any."""
        worker = self._ensure_worker()
        with self._frame_ready:
            done: threading.Event = threading.Event()
            outcome: Dict[str, str] = {}
            self._jobs.append((job, done, outcome))
            self._wake_worker()
        while not done.wait(0.5):
            if not worker.is_alive():
                return 'the worker thread has ended'
        return outcome.get('error')

    def _wake_worker(self) -> None:
        """Wake the worker wherever it waits (call with ``_frame_ready`` held)."""
        self._frame_ready.notify_all()
        if self._waiter is not None:
            self._waiter.wake()

    def _stop_inputs(self) -> None:
        """Stop taking frames, wait for the frames being processed, then unsubscribe."""
        with self._frame_ready:
            self._active = False
            for cam in self._cameras:
                cam.pending = None
            self._wake_worker()
            # the worker must be out of the wait set before its subscriptions are destroyed
            self._frame_ready.wait_for(lambda: not self._busy and not self._in_waiter)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.destroy()
        for cam in self._cameras:
            if cam.subscription is not None:
                self.destroy_subscription(cam.subscription)
                cam.subscription = None

    def _stop_worker(self) -> None:
        with self._frame_ready:
            self._worker_alive = False
            self._wake_worker()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _release(self) -> None:
        if self._configured:
            # first: the detector's close collects what refers to the model in cycles, which
            # frozen objects would survive (the GPU memory pool then outlives the pipeline)
            gc.unfreeze()
        self._configured = False
        self._release_features()
        for cam in self._cameras:
            if cam.publisher is not None:
                self.destroy_lifecycle_publisher(cam.publisher)
        self._cameras = []
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    # ------------------------------------------------------------------ frames
    def _on_image(self, cam: Camera, msg: Any) -> None:
        """Park a frame a foreign executor delivered despite the group (normally never runs)."""
        with self._frame_ready:
            if self._active:
                self._park(cam, msg, None)
                self._wake_worker()

    def _park(self, cam: Camera, msg: Any, info: Optional[Dict[str, Any]]) -> None:
        """Put a taken frame in its camera's slot (newest wins); call with the lock held."""
        now = time.monotonic()
        lost = self._frames_lost(cam, publication_sequence(info), now)
        if cam.pending is not None:
            lost += 1
        if lost:
            for counters in (cam.counters, self.counters):
                counters.add('received', lost)
                counters.add('dropped', lost)
        cam.pending = msg
        cam.pending_since = now
        cam.counters.add('received')
        self.counters.add('received')

    def _frames_lost(self, cam: Camera, seq: Optional[int], now: float) -> int:
        """
        Count the frames the middleware replaced (history depth 1) before the worker took one.

        A gap in the publisher's sequence numbers is a loss only with one publisher on the topic,
        whose count is refreshed at most every PUBLISHER_CHECK_S.
        """
        if seq is None:
            return 0
        if now - cam.publishers_checked > PUBLISHER_CHECK_S and cam.subscription is not None:
            cam.single_publisher = self.count_publishers(cam.subscription.topic_name) == 1
            cam.publishers_checked = now
        last, cam.last_sequence = cam.last_sequence, seq
        if last is None or not cam.single_publisher or seq <= last:
            return 0  # first frame, several publishers, or a restarted publisher
        return seq - last - 1

    def _on_incompatible_qos(self, cam: Camera, event: Any) -> None:
        self.get_logger().warning(
            f'a publisher on {self.resolve_topic_name(cam.input_topic)} offers a QoS this '
            f'subscription ({self.param("qos_reliability")}) cannot match, so no images arrive '
            f'from it: set qos_reliability to best_effort (policy {event.last_policy_kind})',
            once=True,
        )

    def _take_frames(self) -> Optional[List[Tuple[Camera, Any, float]]]:
        """
        Wait for frames and take them; return up to ``batch``, [] for queued jobs, None to stop.

        With several cameras and a batch window, the first frame opens the window and the
        worker keeps taking until every camera has one or the window closes.
        """
        detector = self._detector  # None while unconfigured: no cameras then either
        batch = detector.info.batch if detector is not None else 1
        window_s = self.param('batch_window_ms') / 1e3
        windowed = batch > 1 and len(self._cameras) > 1 and window_s > 0
        wanted = min(batch, len(self._cameras)) if windowed else 1
        deadline: Optional[float] = None
        while True:
            with self._frame_ready:
                if not self._worker_alive:
                    return None
                if self._jobs:
                    return []  # the caller runs the jobs first
                parked = sum(c.pending is not None for c in self._cameras)
                now = time.monotonic()
                if parked and deadline is None:
                    deadline = now + (window_s if windowed else 0.0)
                if parked and (parked >= wanted or now >= deadline):
                    return self._claim(batch, now)
                waiter = self._waiter if self._active else None
                timeout = WAIT_SLICE_S if deadline is None else deadline - now
                if waiter is None:
                    self._frame_ready.wait(timeout)
                    continue
                self._in_waiter = True
            taken: List[Tuple[int, Any, Dict[str, Any]]] = []
            try:
                for index in waiter.wait(timeout):
                    got = waiter.take(index)
                    if got is not None:
                        taken.append((index, got[0], got[1]))
            except Exception as exc:  # e.g. the context shut down under the wait (Ctrl-C)
                if self.context.ok() and self._log_throttle.due('take'):
                    self.get_logger().error(f'taking an image failed: {type(exc).__name__}: {exc}')
                with self._frame_ready:
                    self._frame_ready.wait(0.05)  # no busy loop while it lasts
            finally:
                with self._frame_ready:
                    self._in_waiter = False
                    if self._active:
                        for index, msg, info in taken:
                            self._park(self._cameras[index], msg, info)
                    self._frame_ready.notify_all()  # a deactivate waiting for the wait set

    def _claim(self, batch: int, now: float) -> List[Tuple[Camera, Any, float]]:
        """Take the oldest ``batch`` parked frames out of their slots; call with the lock held."""
        ready = sorted(
            (c for c in self._cameras if c.pending is not None), key=lambda c: c.pending_since
        )[:batch]
        frames = [(c, c.pending, c.pending_since) for c in ready]
        for c in ready:
            c.pending = None
            self.counters.queue_wait.add((now - c.pending_since) * 1e3)
        self._busy = True
        return frames

    def _run_jobs(self) -> None:
        """Run the queued jobs (warm-ups) in order; an exception is the job's error."""
        while True:
            with self._frame_ready:
                if not self._jobs:
                    return
                job, done, outcome = self._jobs.pop(0)
            try:
                job()
            except Exception as exc:  # CUDA out of memory, TensorRT errors: configure fails
                outcome['error'] = f'{type(exc).__name__}: {exc}'
            finally:
                done.set()

    def _run_worker(self) -> None:
        """Worker thread: jobs, then decode, detect, publish; no exception ever escapes."""
        while True:
            self._run_jobs()
            frames = self._take_frames()
            if frames is None:
                self._run_jobs()  # a configure waiting on a job must not hang at shutdown
                return
            if not frames:
                continue
            try:
                self._process(frames)
            except Exception as exc:  # keep the node alive whatever a frame does
                self.counters.error('inference_errors', f'{type(exc).__name__}: {exc}')
                if self._log_throttle.due('inference_errors'):
                    self.get_logger().error(f'inference failed: {type(exc).__name__}: {exc}')
            finally:
                with self._frame_ready:
                    self._busy = False
                    self._frame_ready.notify_all()  # a deactivate waiting for this batch

    def _process(self, frames: Sequence[Tuple[Camera, Image, float]]) -> None:
        detector = self._detector
        if detector is None:
            return
        good: List[Tuple[Camera, Image, float]] = []
        images, bgr = [], []
        for cam, msg, since in frames:
            try:
                image, is_bgr = message_to_array(msg)
            except ImageFormatError as exc:
                cam.counters.error('bad_input', str(exc))
                self.counters.error('bad_input', str(exc))
                if self._log_throttle.due(f'bad_input {cam.input_topic}'):
                    self.get_logger().error(
                        f'dropping frame from {self.resolve_topic_name(cam.input_topic)} '
                        f'(frame_id "{msg.header.frame_id}"): {exc}'
                    )
                continue
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            for anomaly in cam.counters.check_header(msg.header.frame_id, stamp_ns):
                self.counters.add(anomaly)
                if self._log_throttle.due(f'{anomaly} {cam.input_topic}'):
                    self.get_logger().warning(
                        f'frame from {self.resolve_topic_name(cam.input_topic)} '
                        f'{HEADER_WARNINGS[anomaly]}; detecting on it anyway')
            good.append((cam, msg, since))
            images.append(image)
            bgr.append(is_bgr)
        if not images:
            return
        results = detector.detect_batch(images, bgr)
        for (cam, msg, since), dets, image, is_bgr in zip(good, results, images, bgr):
            dets = self._track(cam, dets, image, is_bgr)
            if cam.publisher is not None:
                if self._serializer is not None:
                    stamp = msg.header.stamp
                    cam.publisher.publish(self._serializer.serialize(
                        dets, stamp.sec, stamp.nanosec, msg.header.frame_id))
                else:
                    cam.publisher.publish(cam.messages.build(dets, msg.header))
            latency_ms = (time.monotonic() - since) * 1e3
            for counters in (cam.counters, self.counters):
                counters.add('processed')
                counters.latency.add(latency_ms)
            self._publish_debug_image(cam, msg.header, image, is_bgr, dets)

    # ------------------------------------------------------------------ helpers
    @property
    def detector(self) -> Optional[Detector]:
        """Built detector, or None unless configured."""
        return self._detector

    def autostart(self) -> bool:
        """Configure and activate when the autostart parameter is set; return success."""
        if not self.param('autostart'):
            return True
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS


def camera_topics(topics: Sequence[str]) -> List[Tuple[str, str]]:
    """Return (input, output) topics: one camera -> detections_output, else <in>/detections."""
    topics = [t.strip() for t in topics]
    if len(topics) == 1:
        return [(topics[0], SINGLE_OUTPUT_TOPIC)]
    return [(t, f'{t.rstrip("/")}/detections') for t in topics]


def image_qos(reliability: str) -> QoSProfile:
    """Return the image subscription QoS: sensor data (best effort, depth 1 = newest frame)."""
    qos = QoSProfile(
        depth=1,
        history=qos_profile_sensor_data.history,
        durability=qos_profile_sensor_data.durability,
        reliability=qos_profile_sensor_data.reliability,
    )
    if reliability == 'reliable':
        qos.reliability = QoSReliabilityPolicy.RELIABLE
    return qos


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Turn a :class:`ParamSpec` into a ParameterDescriptor with ranges."""
    # dynamic_typing for all: rclpy's own type check would answer 'Wrong parameter type,
    # expected 3 got 4' before our callback could name the parameter and what it expects;
    # check_value() enforces the declared type itself (and takes 1 for 1.0)
    desc = ParameterDescriptor(
        description=spec.description, read_only=spec.read_only, dynamic_typing=True
    )
    if spec.structural and not spec.read_only:
        desc.additional_constraints = 'Changeable only while unconfigured.'
    if spec.int_range is not None:
        lo, hi, step = spec.int_range
        desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=step)]
    if spec.float_range is not None:
        desc.floating_point_range = [
            FloatingPointRange(
                from_value=spec.float_range[0], to_value=spec.float_range[1], step=0.0
            )
        ]
    return desc


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def main(args: Optional[List[str]] = None) -> None:
    """Run the node (``ros2 run yolo_jetson_ros detector_node``)."""
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (docker stop, systemd, launch's escalation) ends the node as Ctrl-C does: an
        # export in progress is stopped, its child killed, nothing half-written left, exit 0.
        # Installed before rclpy.init, so rclpy's own handler runs first and chains to it.
        signal.signal(signal.SIGTERM, _interrupt)
    rclpy.init(args=args)
    node = YoloDetectorNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if not node.autostart():
            node.get_logger().error(
                'autostart failed; the node stays up and can be configured '
                'again through its lifecycle services'
            )
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
