# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
End-to-end demo: the real detector node in its own process, driven like a robot would drive it.

Starts the node, configures and activates it through its lifecycle services, publishes sample
images as sensor_msgs/Image from this process, prints what comes back on detections_output and
writes annotated images. ``make demo`` runs it; ``ros2 run yolo_jetson_ros demo`` too.
"""

import argparse
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import cv2
import numpy as np

DEMO_IMAGES_COCO128 = ('000000000009.jpg', '000000000025.jpg', '000000000030.jpg',
                       '000000000036.jpg')
FIXTURE_WEIGHTS = 'yolo11n_coco128.pt'


def default_model() -> str:
    """Return the coco128-trained fixture where a model folder holds it, else 'yolo11n'."""
    folder = os.environ.get('YOLO_JETSON_ROS_MODEL_DIR', '')
    if folder and (Path(folder) / FIXTURE_WEIGHTS).is_file():
        return str(Path(folder) / FIXTURE_WEIGHTS)
    return 'yolo11n'  # official weights, downloaded by Ultralytics when online


def sample_images(data_dir: Optional[Path]) -> Dict[str, np.ndarray]:
    """Return bus.jpg and zidane.jpg (from the ultralytics wheel) and a few coco128 images."""
    paths: List[Path] = []
    try:
        import ultralytics
        assets = Path(ultralytics.__file__).parent / 'assets'
        paths += [assets / 'bus.jpg', assets / 'zidane.jpg']
    except ImportError:
        pass
    if data_dir is not None:
        paths += [data_dir / 'images' / 'train2017' / n for n in DEMO_IMAGES_COCO128]
    images = {}
    for p in paths:
        img = cv2.imread(str(p))
        if img is not None:
            images[p.name] = img
    return images


def node_command(model: str, args: argparse.Namespace) -> List[str]:
    """Return the command that starts the node (the installed console script when present)."""
    ros_args = ['--ros-args', '-p', f'model:={model}', '-p', f'backend:={args.backend}',
                '-p', f'device:={args.device}', '-p', f'conf:={args.conf}']
    if args.cache_dir:
        ros_args += ['-p', f'engine_cache_dir:={args.cache_dir}']
    return [sys.executable, '-m', 'yolo_jetson_ros.node.detector_node', *ros_args]


def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', default='', help='model name or path (default: fixture or '
                        'yolo11n)')
    parser.add_argument('--backend', default='auto')
    parser.add_argument('--device', default='cpu', help="cpu (default), cuda:0, or '' for auto")
    parser.add_argument('--conf', type=float, default=0.25)
    parser.add_argument('--data', default='', help='coco128-style folder for extra images')
    parser.add_argument('--cache-dir', default='')
    parser.add_argument('--out', default='demo_output')
    args = parser.parse_args(argv)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection2DArray

    from .node.annotate import draw_detections
    from .node.conversions import array_to_image, msg_to_detections
    from .node.lifecycle_client import LifecycleClient

    model = args.model or default_model()
    data_dir = Path(args.data) if args.data else _shared_coco128()
    images = sample_images(data_dir)
    if not images:
        print('no sample images found (install ultralytics or pass --data)', file=sys.stderr)
        return 1
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    print(f'[demo] starting the detector node (model {model}, backend {args.backend}, '
          f'device {args.device or "auto"})', flush=True)
    node_proc = subprocess.Popen(node_command(model, args), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    threading.Thread(target=_relay, args=(node_proc,), daemon=True).start()

    rclpy.init()
    demo = rclpy.create_node('yolo_demo')
    executor = SingleThreadedExecutor()
    executor.add_node(demo)
    received: Dict[int, Detection2DArray] = {}
    names: Dict[int, str] = {}
    demo.create_subscription(Detection2DArray, 'detections_output',
                             lambda m: received.__setitem__(m.header.stamp.nanosec, m), 10)
    try:
        from vision_msgs.msg import LabelInfo
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        demo.create_subscription(LabelInfo, 'label_info', lambda m: names.update(
            {int(c.class_id): c.class_name for c in m.class_map}), latched)
    except ImportError:  # vision_msgs 4.0 has no LabelInfo: print indices
        pass
    publisher = demo.create_publisher(Image, 'image', qos_profile_sensor_data)
    lifecycle = LifecycleClient(demo, executor, '/yolo_detector')
    rc = 0
    try:
        if not lifecycle.wait_for_services(60.0):
            raise RuntimeError('the node did not come up (see [node] lines above)')
        t0 = time.monotonic()
        if not lifecycle.transition('configure'):
            raise RuntimeError('configure failed (see the [node] lines above for the reason)')
        print(f'[demo] configured in {time.monotonic() - t0:.1f} s', flush=True)
        if not lifecycle.transition('activate'):
            raise RuntimeError('activate failed')
        while publisher.get_subscription_count() == 0:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(20):  # let LabelInfo (latched) arrive
            executor.spin_once(timeout_sec=0.02)
        latencies = []
        for index, (name, image) in enumerate(images.items()):
            header = Header(frame_id='camera_optical')
            header.stamp.sec, header.stamp.nanosec = int(time.time()), index + 1
            msg = array_to_image(image, header)
            sent = time.perf_counter()
            publisher.publish(msg)
            deadline = time.monotonic() + 30.0
            while index + 1 not in received and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.01)
            result = received.get(index + 1)
            if result is None:
                print(f'[demo] {name}: no detections message within 30 s')
                rc = 1
                continue
            latency_ms = (time.perf_counter() - sent) * 1e3
            latencies.append(latency_ms)
            items = ', '.join(
                f'{_label(names, d.results[0].hypothesis.class_id)}'
                f' {d.results[0].hypothesis.score:.2f} '
                f'[{d.bbox.center.position.x:.0f},{d.bbox.center.position.y:.0f} '
                f'{d.bbox.size_x:.0f}x{d.bbox.size_y:.0f}]' for d in result.detections)
            print(f'[demo] {name} ({image.shape[1]}x{image.shape[0]}, frame_id '
                  f'"{result.header.frame_id}"): {len(result.detections)} detections in '
                  f'{latency_ms:.0f} ms: {items or "none"}', flush=True)
            cv2.imwrite(str(out_dir / name),
                        draw_detections(image, msg_to_detections(result), names))
        if latencies:
            print(f'[demo] {len(latencies)}/{len(images)} images answered; latency publish -> '
                  f'detections: median {np.median(latencies):.0f} ms (CPU, first frames '
                  f'included); annotated images in {out_dir.resolve()}')
        for step in ('deactivate', 'cleanup', 'shutdown'):
            if not lifecycle.transition(step):
                raise RuntimeError(f'{step} failed')
        print('[demo] lifecycle: configure -> activate -> deactivate -> cleanup -> shutdown OK')
    except (RuntimeError, TimeoutError) as exc:
        print(f'[demo] FAILED: {exc}', file=sys.stderr)
        rc = 1
    finally:
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        demo.destroy_node()
        rclpy.try_shutdown()
    return rc


def _label(names: Dict[int, str], class_id: str) -> str:
    return names.get(int(class_id), class_id)


def _relay(proc: 'subprocess.Popen[str]') -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if '[export]' in line and 'ONNX' not in line:
            continue  # the exporter's chatter; its ONNX lines say what happens
        print(f'[node] {line.rstrip()}', flush=True)


def _shared_coco128() -> Optional[Path]:
    folder = os.environ.get('YOLO_JETSON_ROS_MODEL_DIR', '')
    if folder:
        candidate = Path(folder).parent / 'data' / 'coco128'
        if candidate.is_dir():
            return candidate
    return None


if __name__ == '__main__':
    sys.exit(main())
