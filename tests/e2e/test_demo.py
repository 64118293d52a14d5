"""`failover demo` (what `make demo` runs) from start to teardown, and that it leaves nothing."""

from __future__ import annotations

import re

import pytest

from failover.demo import Demo
from failover.lab import NAMESPACES
from failover.lab import netns as nets
from failover.lab.stack import Stack
from failover.testing.lab import unavailable

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_demo_runs_end_to_end_and_leaves_nothing() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    lines: list[str] = []
    stack = Stack()
    code = Demo(stack, echo=lines.append).run()
    text = "\n".join(lines)
    assert code == 0, text
    measured = re.search(r"measured failover: BGP ([\d.]+) s, DNS ([\d.]+) s", text)
    assert measured, text
    bgp_s, dns_s = float(measured.group(1)), float(measured.group(2))
    check = stack.config.sites["dc1"].services["db"].check
    bound_s = (
        check.interval_s * (check.fall - 1)
        + check.timeout_s
        + stack.config.policy.hold_down_s
        + 5.0
    )
    assert 0 < bgp_s < bound_s and 0 < dns_s < bound_s, text
    assert "isp best route 203.0.113.0/24: via dc2 (primary)" in text
    assert "web: applied and verified on dc1" in text
    assert "DNS answers: primary 10.1.0.13, secondary 10.1.0.13" in text.split("switch back")[-1]
    assert not set(NAMESPACES) & set(nets.namespaces()), "the demo left namespaces behind"
    assert not stack.lab.run_dir.exists(), "the demo left its run dir behind"
