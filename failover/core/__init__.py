"""The pure decision core: no I/O, no clock reads; (state, event, now) -> (state, decisions)."""

from failover.core.cycle import View
from failover.core.policy import Engine

__all__ = ["Engine", "View"]
