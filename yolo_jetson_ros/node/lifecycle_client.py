# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
Drive a lifecycle node through its lifecycle_msgs services, from another node.

What ``ros2 lifecycle set`` does, usable where ros2cli is not installed (the demo, the tests).
"""

import time
from typing import Optional

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import Executor
from rclpy.node import Node

TRANSITIONS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'cleanup': Transition.TRANSITION_CLEANUP,
    'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
}
STATE_LABELS = {State.PRIMARY_STATE_UNCONFIGURED: 'unconfigured',
                State.PRIMARY_STATE_INACTIVE: 'inactive', State.PRIMARY_STATE_ACTIVE: 'active',
                State.PRIMARY_STATE_FINALIZED: 'finalized'}


class LifecycleClient:
    """Service clients for one lifecycle node (``/<name>/change_state``, ``get_state``)."""

    def __init__(self, node: Node, executor: Executor, target: str):
        self._node = node
        self._executor = executor
        self._change = node.create_client(ChangeState, f'{target}/change_state')
        self._get = node.create_client(GetState, f'{target}/get_state')

    def wait_for_services(self, timeout_s: float = 30.0) -> bool:
        """Spin until both services are available; return False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._change.service_is_ready() and self._get.service_is_ready():
                return True
            self._executor.spin_once(timeout_sec=0.1)
        return False

    def _call(self, client, request, timeout_s: float):
        future = client.call_async(request)
        self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        if not future.done():
            raise TimeoutError(f'{client.srv_name} did not answer within {timeout_s:.0f} s')
        return future.result()

    def transition(self, name: str, timeout_s: float = 600.0) -> bool:
        """Request a transition by name; return whether the node reports success."""
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS[name]
        return bool(self._call(self._change, request, timeout_s).success)

    def state(self, timeout_s: float = 10.0) -> Optional[str]:
        """Return the node's current state label ('unconfigured', 'active', ...)."""
        result = self._call(self._get, GetState.Request(), timeout_s)
        return STATE_LABELS.get(result.current_state.id, result.current_state.label)
