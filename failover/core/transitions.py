"""The group phases and the only moves between them (STYLE.md item 3: enforced, not advisory)."""

from __future__ import annotations

from failover.core.model import Phase


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the caller, never a runtime condition."""


# (phase, event) -> next phase
TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    ("steady", "suspect"): "suspect",  # the active site looks down: hold-down starts
    ("suspect", "recover"): "steady",  # it came back, or the evidence went away
    ("steady", "switch"): "switching",  # demote the old site first (BGP)
    ("suspect", "switch"): "switching",
    ("steady", "switch_direct"): "steady",  # one atomic update moves everything (DNS)
    ("suspect", "switch_direct"): "steady",
    ("switching", "promote"): "steady",  # old site demoted, or its lease surely expired
}


def transition(phase: Phase, event: str) -> Phase:
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransition(f"no transition from {phase!r} on {event!r}") from None
