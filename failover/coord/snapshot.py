"""The one reader of the cluster's shared state: the leader, `failover status` and the operator
commands all read it through `read_snapshot`, so that they see it the same way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from failover.coord.base import Coordinator, Member
from failover.core.model import Applied, Command, GroupState, Observation


@dataclass
class Snapshot:
    """What one read of the coordinator saw (each call arms its watch, as documented)."""

    states: dict[str, GroupState]  # the written desired states (a group never written: absent)
    versions: dict[str, int]  # each group's desired-state node version (`NO_NODE`: absent)
    applied: dict[tuple[str, str], Applied]  # (group, site) -> what that site's agent applied
    members: dict[str, Member]
    observations: list[Observation]
    commands: list[Command]  # pending, oldest first

    def agents(self, serving: Iterable[str]) -> frozenset[str]:
        """Serving sites whose agent holds a session (its ephemeral member node exists)."""
        sites = set(serving)
        return frozenset(
            m.site for m in self.members.values() if "agent" in m.roles and m.site in sites
        )


def read_snapshot(coordinator: Coordinator, groups: Sequence[str]) -> Snapshot:
    """Read desired and applied state of `groups`, members, observations and pending commands
    (raises `CoordinatorError`)."""
    states: dict[str, GroupState] = {}
    versions: dict[str, int] = {}
    applied: dict[tuple[str, str], Applied] = {}
    for group, (state, version, by_site) in coordinator.groups(groups).items():
        versions[group] = version
        if state is not None:
            states[group] = state
        for site, item in by_site.items():
            applied[(group, site)] = item
    return Snapshot(
        states,
        versions,
        applied,
        coordinator.members(),
        coordinator.observations(),
        coordinator.pending_commands(),
    )
