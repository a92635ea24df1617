# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Images taken from their subscriptions by the inference thread itself, not by the executor.

rclpy's executor rebuilds its wait set from every entity of every node at each wake-up (a
lifecycle node alone has over a dozen services), then calls a Python callback, which has to hand
the frame to the inference thread. Measured on a 2-core VM, an image published and answered in
one process took 2.3-3.2 ms p50 that way, and 0.7 ms when the thread that uses the image waits on
its subscription with a wait set of its own, as ``rclpy.wait_for_message`` does.

The subscriptions live in a :class:`WorkerTakenGroup`, which the executor skips, so no message is
taken twice. Their QoS event handlers (incompatible QoS warnings) are skipped too and waited on by
the same wait set: rmw_fastrtps waits on one DataReader status condition for a subscription's
data and for its events, and while an executor's wait set held the events, the worker's wait
often woke late (measured: stalls of 10-12 ms instead of at most 0.5 ms for a small message).
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.context import Context
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.subscription import Subscription


class WorkerTakenGroup(ReentrantCallbackGroup):
    """A callback group no executor runs: a :class:`SubscriptionWaiter` serves its entities."""

    def can_execute(self, entity: Any) -> bool:
        """Refuse everything: executors leave the group's entities out of their wait sets."""
        return False

    def beginning_execution(self, entity: Any) -> bool:
        """Refuse everything, as :meth:`can_execute`."""
        return False


class SubscriptionWaiter:
    """
    Wait for messages on a fixed set of subscriptions from one thread, outside any executor.

    The subscriptions' QoS event handlers are waited on too, and their callbacks run inside
    :meth:`wait`. Only one thread may call :meth:`wait` and :meth:`take`; any thread may call
    :meth:`wake`. The owner must not destroy the subscriptions while either runs.
    """

    def __init__(self, context: Context, subscriptions: Sequence[Subscription]) -> None:
        self.subscriptions = list(subscriptions)
        self._events = [h for sub in self.subscriptions for h in sub.event_handlers]
        self._wake = GuardCondition(None, None, context=context)
        self._wait_set = _rclpy.WaitSet(len(self.subscriptions), 1, 0, 0, 0, len(self._events),
                                        context.handle)

    def wake(self) -> None:
        """Make a :meth:`wait` in progress (or the next one) return at once."""
        self._wake.trigger()

    def wait(self, timeout_s: float) -> List[int]:
        """
        Block, the GIL released, until a message or event arrives, :meth:`wake` or ``timeout_s``.

        Runs the callbacks of the events that arrived; returns the indices of the subscriptions
        that have a message to take.
        """
        wait_set = self._wait_set
        wait_set.clear_entities()
        for sub in self.subscriptions:
            wait_set.add_subscription(sub.handle)
        for handler in self._events:
            handler.add_to_wait_set(wait_set)
        wait_set.add_guard_condition(self._wake.handle)
        wait_set.wait(max(0, int(timeout_s * 1e9)))
        for handler in self._events:
            if handler.is_ready(wait_set):
                _run_to_completion(handler.execute(handler.take_data()))
        ready = wait_set.get_ready_entities('subscription')
        return [i for i, sub in enumerate(self.subscriptions) if sub.handle.pointer in ready]

    def take(self, index: int) -> Optional[Tuple[Any, Dict[str, Any]]]:
        """Take the oldest message of subscription ``index``: ``(message, info)``, or None."""
        sub = self.subscriptions[index]
        with sub.handle:
            return sub.handle.take_message(sub.msg_type, sub.raw)

    def destroy(self) -> None:
        """Release the guard condition (the subscriptions belong to the node)."""
        self._wake.destroy()
        self.subscriptions = []
        self._events = []


def _run_to_completion(coroutine: Any) -> None:
    """Run an event handler's ``execute`` coroutine; its callback is plain, so one step ends it."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()  # an awaiting callback is not supported outside an executor


def publication_sequence(info: Optional[Dict[str, Any]]) -> Optional[int]:
    """
    Return the publisher's sequence number of a taken message, where the middleware reports it.

    Jazzy's rclpy reports it (Fast DDS); Humble's message info has none.
    """
    if not info:
        return None
    seq = info.get('publication_sequence_number')
    return seq if isinstance(seq, int) and seq > 0 else None


__all__ = ['SubscriptionWaiter', 'WorkerTakenGroup', 'publication_sequence']
