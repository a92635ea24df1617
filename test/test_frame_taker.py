# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""The worker takes images itself: executors skip the subscriptions, the waiter gets them."""

import threading
import time
from typing import Any, List

import pytest

from yolo_jetson_ros.node.frame_taker import (publication_sequence, SubscriptionWaiter,
                                              WorkerTakenGroup)

pytestmark = pytest.mark.integration


def test_publication_sequence_reads_what_the_middleware_reports() -> None:
    assert publication_sequence({'publication_sequence_number': 7}) == 7
    assert publication_sequence({'publication_sequence_number': None}) is None  # unsupported
    assert publication_sequence({'source_timestamp': 1}) is None  # Humble: no such key
    assert publication_sequence(None) is None


def test_executor_skips_the_group_and_the_waiter_takes(rclpy_context: Any) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import String
    node = Node('taker', context=rclpy_context)
    called: List[str] = []
    sub = node.create_subscription(String, 'frames', lambda m: called.append(m.data), 10,
                                   callback_group=WorkerTakenGroup())
    ordinary: List[str] = []
    node.create_subscription(String, 'frames', lambda m: ordinary.append(m.data), 10)
    pub = node.create_publisher(String, 'frames', 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    waiter = SubscriptionWaiter(rclpy_context, [sub])
    try:
        deadline = time.monotonic() + 30
        while pub.get_subscription_count() < 2 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        pub.publish(String(data='a'))
        while not ordinary and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        assert ordinary == ['a']  # the executor runs the other subscription ...
        assert called == []  # ... and never the worker's
        assert waiter.wait(5.0) == [0]
        got = waiter.take(0)
        assert got is not None and got[0].data == 'a'
        assert waiter.take(0) is None  # taken once
    finally:
        waiter.destroy()
        executor.shutdown()
        node.destroy_node()


def test_wake_ends_a_wait_from_another_thread(rclpy_context: Any) -> None:
    from rclpy.node import Node
    from std_msgs.msg import String
    node = Node('taker_wake', context=rclpy_context)
    sub = node.create_subscription(String, 'nothing', lambda m: None, 10,
                                   callback_group=WorkerTakenGroup())
    waiter = SubscriptionWaiter(rclpy_context, [sub])
    results: List[List[int]] = []
    try:
        thread = threading.Thread(target=lambda: results.append(waiter.wait(120.0)))
        thread.start()
        time.sleep(0.2)  # let it block; the test's outcome does not depend on this
        waiter.wake()
        thread.join(60.0)
        assert not thread.is_alive(), 'wake() did not end the wait'
        assert results == [[]]  # woken, nothing to take
    finally:
        waiter.destroy()
        node.destroy_node()


def test_qos_events_of_the_group_reach_their_callbacks_through_the_waiter(
        rclpy_context: Any) -> None:
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from std_msgs.msg import String
    try:  # rclpy >= Iron
        from rclpy.event_handler import SubscriptionEventCallbacks
    except ImportError:  # Humble
        from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]
    node = Node('taker_events', context=rclpy_context)
    events: List[Any] = []
    sub = node.create_subscription(
        String, 'mismatch', lambda m: None,
        QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE),
        callback_group=WorkerTakenGroup(),
        event_callbacks=SubscriptionEventCallbacks(incompatible_qos=events.append))
    node.create_publisher(String, 'mismatch',
                          QoSProfile(depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT))
    waiter = SubscriptionWaiter(rclpy_context, [sub])
    try:
        deadline = time.monotonic() + 30
        while not events and time.monotonic() < deadline:
            assert waiter.wait(0.1) == []  # an event, never a message
        assert events, 'the incompatible QoS event never reached its callback'
        assert events[0].total_count >= 1
    finally:
        waiter.destroy()
        node.destroy_node()
