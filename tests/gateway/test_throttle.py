"""Login throttling with a controlled clock: lockouts, doubling, forgetting, addresses more lenient."""

from __future__ import annotations

from xueliang.gateway.throttle import LoginThrottle


def test_lockout_doubles_and_success_clears() -> None:
    now = [0.0]
    throttle = LoginThrottle(3, 300.0, 60.0, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("user:a")
    assert throttle.wait_s("user:a") == 0
    throttle.failed("user:a")
    assert throttle.wait_s("user:a") == 60.0
    now[0] = 61.0
    assert throttle.wait_s("user:a") == 0
    for _ in range(3):
        throttle.failed("user:a")
    assert throttle.wait_s("user:a") == 120.0  # the second lockout doubles
    throttle.succeeded("user:a")
    assert throttle.wait_s("user:a") == 0
    assert throttle.refused == 2


def test_old_failures_are_forgotten_and_addresses_get_more_tries() -> None:
    now = [0.0]
    throttle = LoginThrottle(3, 300.0, 60.0, clock=lambda: now[0])
    throttle.failed("user:b")
    throttle.failed("user:b")
    now[0] = 400.0
    throttle.failed("user:b")
    assert throttle.wait_s("user:b") == 0
    for _ in range(11):
        throttle.failed("address:10.1.1.1")
    assert throttle.wait_s("address:10.1.1.1") == 0
    throttle.failed("address:10.1.1.1")
    assert throttle.wait_s("address:10.1.1.1") == 60.0
