# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""Time the fused GPU detect path in the main thread, a worker thread, beside rclpy executors."""

import statistics
import sys
import threading
import time

import numpy as np

from yolo_jetson_ros.pipeline.detector import build_detector, DetectorConfig


def timed(detector, frame, n=100):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        detector.detect(frame)
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out), max(out)


def in_thread(detector, frame):
    box = {}
    t = threading.Thread(target=lambda: box.update(r=timed(detector, frame)))
    t.start()
    t.join()
    return box['r']


def main() -> None:
    model = sys.argv[1]
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    det = build_detector(DetectorConfig(model=model, backend='torch', device='cuda:0',
                                        precision='fp16'))
    timed(det, frame, 20)
    print('main thread        median/max ms', timed(det, frame), flush=True)
    print('worker thread      median/max ms', in_thread(det, frame), flush=True)
    busy = threading.Event()

    def spinner():
        x = 0
        while not busy.is_set():
            x += 1
    s = threading.Thread(target=spinner, daemon=True)
    s.start()
    print('+ busy py thread   median/max ms', in_thread(det, frame), flush=True)
    sys.setswitchinterval(0.0002)
    print('+ busy, switch 0.2ms median/max', in_thread(det, frame), flush=True)
    sys.setswitchinterval(0.005)
    busy.set()
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.node import Node
    for ex_cls in (SingleThreadedExecutor, MultiThreadedExecutor):
        rclpy.init()
        nodes = [Node('a'), Node('b')]
        ex = ex_cls()
        for n in nodes:
            ex.add_node(n)
        threading.Thread(target=ex.spin, daemon=True).start()
        time.sleep(0.5)
        print(f'+ {ex_cls.__name__:24s} median/max ms', in_thread(det, frame), flush=True)
        ex.shutdown()
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown()


if __name__ == '__main__':
    main()
