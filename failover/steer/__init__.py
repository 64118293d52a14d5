"""Steering adapters: make BGP announcements or DNS records match a group's desired state."""

from failover.steer.base import (
    Outcome,
    Steerer,
    SteerError,
    SteerResult,
    bgp_plan,
    fail_open_problem,
)
from failover.steer.bird import BirdSteerer
from failover.steer.dns import Rfc2136Steerer
from failover.steer.transcript import Transcript

__all__ = [
    "BirdSteerer",
    "Outcome",
    "Rfc2136Steerer",
    "SteerError",
    "SteerResult",
    "Steerer",
    "Transcript",
    "bgp_plan",
    "fail_open_problem",
]
