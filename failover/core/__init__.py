"""The pure decision core: no I/O, no clock reads; (state, event, now) -> (state, decisions)."""

from failover.core.policy import Engine, View

__all__ = ["Engine", "View"]
