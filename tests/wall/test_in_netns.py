"""Runs the WebRTC scenarios (aiortc viewers, headless Chromium) in a private network namespace.

Each scenario file is a normal pytest module; this test starts pytest on it inside the namespace
(see ``netns.py``) and fails with its output when any of its tests fails.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.wall.netns import netns_problem, run_in_netns

SCENARIO_TIMEOUT_S = 270


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["scenario_relay.py", "scenario_browser.py"])
def test_scenario_in_network_namespace(scenario: str) -> None:
    problem = netns_problem()
    if problem:
        pytest.fail(problem)
    try:
        result = run_in_netns(["-q", "-rA", "--timeout=240", f"tests/wall/{scenario}"], SCENARIO_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"")[-6000:]
        pytest.fail(f"{scenario} ran past {SCENARIO_TIMEOUT_S} s and was killed; last output:\n{output!r}")
    tail = (result.stdout + result.stderr)[-12000:]
    assert result.returncode == 0, f"{scenario} failed inside the namespace:\n{tail}"
    print(tail)
