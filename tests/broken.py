"""Deliberately broken rules, for tests only: each safety check must fail on one of them.
The old rules (before the safety review) are kept here to show the checks would have caught
them; the others break a rule outright. The broken daemon rules at the end show that the
simulator runs the daemon's own roles: a bug in their loops, not only in the core, is caught."""

from __future__ import annotations

from dataclasses import replace

from failover.config.model import Config
from failover.coord import Coordinator
from failover.core.model import AUTO, Observation
from failover.core.policy import Engine
from failover.daemon.agent import Agent
from failover.daemon.leader import Leader, Snapshot
from failover.daemon.observer import Verdicts


class IgnoresQuorum(Engine):
    """A deliberately broken policy for tests only: one observer site is enough to act, and
    nothing blocks a switch (the target's health included)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.layout.quorum = 1

    def _auto_blocked(self, cycle, target, state=None):  # type: ignore[no-untyped-def]
        return None


class FailsOverAt30(Engine):
    """A deliberately broken policy for tests only: it fails over 30 s in, whatever it sees."""

    def _decide(self, cycle, view):  # type: ignore[no-untyped-def]
        state = cycle.state
        if state.last_switch_at is None and state.phase == "steady":
            if cycle.now >= 30:
                self.begin_switch(
                    cycle,
                    self.layout.other(state.active),
                    "failover",
                    "broken: fails over at 30 s",
                    AUTO,
                )
                return
            cycle.wake(30)
        super()._decide(cycle, view)


class SuspicionLease(Engine):
    """The old rule (broken, tests only): a lost agent's lease counted from when the group
    turned suspect, not from when its session was seen gone."""

    def begin_switch(  # type: ignore[no-untyped-def]
        self,
        cycle,
        target,
        code,
        sentence,
        by,
        gone_at=None,
        **evidence,
    ):
        suspect_since = cycle.state.suspect_since
        super().begin_switch(cycle, target, code, sentence, by, gone_at=gone_at, **evidence)
        if gone_at is not None and suspect_since is not None:
            cycle.state = replace(
                cycle.state, demote_by=suspect_since + self.config.lease_s(cycle.state.group)
            )


class StickyHoldDown(Engine):
    """The old rule (broken, tests only): the hold-down runs from the first suspicion,
    through any period in which the switch was blocked."""

    def _active_down(self, cycle, active, view):  # type: ignore[no-untyped-def]
        state = cycle.state
        if state.suspect_since is not None:
            target = self.layout.other(state.active)
            if (
                self._auto_blocked(cycle, target) is None
                and cycle.now - state.suspect_since >= self.policy.hold_down_s
            ):
                gone_at = (
                    view.agents_gone_at.get(state.active, cycle.now)
                    if active.situation == "agent_lost"
                    else None
                )
                self.begin_switch(
                    cycle, target, "failover", "sticky hold-down", "auto", gone_at=gone_at
                )
                return
        super()._active_down(cycle, active, view)


class OverrideSnapsBack(Engine):
    """The old rule (broken, tests only): an expired override moves back to the preferred
    site at once, whatever the failback setting and the cooldown."""

    def _override_lapsed(self, cycle):  # type: ignore[no-untyped-def]
        lapsed = cycle.state.override
        super()._override_lapsed(cycle)
        preferred = self.config.preferred_site(cycle.state.group)
        if lapsed is not None and cycle.state.active != preferred:
            self.begin_switch(cycle, preferred, "override_lapsed", "snap back", "auto")


class OldRules(SuspicionLease, StickyHoldDown):
    """Both old rules together, as the policy had them before the safety review."""


# --- broken daemon rules: the shipped roles with one step of their loop wrong ------------------


class ConfirmsWithoutSession(Agent):
    """A deliberately broken agent (tests only): every cycle counts as a confirmation of the
    desired state, even one that could not read it on a live session, so its lease never
    runs out and a cut-off primary is never held."""

    def cycle(self, coordinator: Coordinator, now: float) -> float | None:
        self.confirmed_at = now
        return super().cycle(coordinator, now)


class CountsFromTheLastReport(Leader):
    """A deliberately broken leader (tests only): it counts a lost agent's absence from that
    agent's last report of what it applied, not from when it first saw its session gone, so
    it takes a primary that is still on its lease for surely ended, and promotes too soon."""

    def read(self, coordinator: Coordinator, now: float) -> Snapshot:
        snap = super().read(coordinator, now)
        view = snap.view
        gone = {
            site: min((a.at for (_, s), a in view.applied.items() if s == site), default=since)
            for site, since in view.agents_gone_at.items()
        }
        snap.view = replace(view, agents_gone_at=gone)
        return snap


class NeverRepublishes(Verdicts):
    """A deliberately broken observer (tests only): it publishes its verdicts when one changes,
    never again while none does, so the leader sees a quiet observer's verdicts go stale."""

    def publish_due(self) -> bool:
        return self.dirty


class PublishesItsPreviousVerdicts(Verdicts):
    """A deliberately broken observer (tests only): each publish, freshly stamped, carries the
    verdicts of the publish before it, so every change reaches the leader one publish late."""

    previous: list[Observation] | None = None

    def observations(self, now: float) -> list[Observation]:
        current = super().observations(now)
        previous = self.previous if self.previous is not None else current
        self.previous = current
        return [replace(o, at=now) for o in previous]
