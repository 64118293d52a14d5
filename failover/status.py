"""The status document: what `failover status --json` prints and `GET /status` serves.

Built from one coordinator snapshot and the config: per group the desired state against what
each site applied, the epoch, frozen, the switch budget left and the pending commands; per
site and service the vote of every observer site; the health the leader's rules see.
"""

from __future__ import annotations

import time
from typing import Any

from failover.config import Config
from failover.coord import Coordinator
from failover.coord.snapshot import read_snapshot
from failover.core import Engine, View
from failover.core.codec import to_dict
from failover.core.health import ServiceLayout, index, service_votes
from failover.core.model import GroupState, Observation, target_key


def build_status(
    coordinator: Coordinator, config: Config, now: float | None = None
) -> dict[str, Any]:
    """Read a snapshot from the coordinator and describe it (raises CoordinatorError)."""
    now = time.time() if now is None else now
    leader = coordinator.leader()
    cluster = read_snapshot(coordinator, list(config.groups))
    members, observations, applied = cluster.members, cluster.observations, cluster.applied
    desired: dict[str, GroupState | None] = {g: cluster.states.get(g) for g in config.groups}
    pending = cluster.commands
    engine = Engine(config)
    view = View(now, observations, applied)
    health = engine.assess(view)
    groups: dict[str, Any] = {}
    for group in config.groups:
        state = desired[group]
        shown = state or engine.initial(group, now)
        used = engine.switches_last_hour(shown, now)
        sites: dict[str, Any] = {}
        for site in config.serving_sites:
            done = applied.get((group, site))
            want = shown.announcement(site, _backup(config, group))
            sites[site] = {
                "desired": want,
                "applied": done.announcement if done else None,
                "applied_epoch": done.epoch if done else None,
                "verified": done.verified if done else False,
                "detail": done.detail if done else "",
                "applied_at": done.at if done else None,
                "in_sync": bool(
                    done
                    and done.epoch >= shown.epoch
                    and done.announcement == want
                    and done.verified
                ),
                "health": {
                    "situation": health[group][site].situation,
                    "detail": health[group][site].detail,
                    "down": list(health[group][site].down),
                    "degraded": list(health[group][site].degraded),
                },
            }
        groups[group] = {
            "written": state is not None,
            "active": shown.active,
            "preferred": config.preferred_site(group),
            "epoch": shown.epoch,
            "phase": shown.phase,
            "frozen": shown.frozen,
            "frozen_by": shown.frozen_by,
            "frozen_reason": shown.frozen_reason,
            "budget": engine.budget,
            "budget_left": max(0, engine.budget - used),
            "last_switch_at": shown.last_switch_at,
            "switch_times": list(shown.switch_times),
            "override": to_dict(shown.override) if shown.override else None,
            "scheduled": to_dict(shown.scheduled) if shown.scheduled else None,
            "graceful": _graceful(shown, config),
            "reason": shown.reason,
            "code": shown.code,
            "by": shown.by,
            "changed_at": shown.changed_at,
            "steering": config.groups[group].steering.method,
            "sites": sites,
            "pending": [to_dict(c) for c in pending if c.group in (None, group)],
        }
    return {
        "cluster": config.cluster.name,
        "at": now,
        "leader": {"instance": leader.instance, "term": leader.term} if leader else None,
        "members": {
            name: {
                "site": m.site,
                "version": m.version,
                "roles": list(m.roles),
                "started_at": m.started_at,
            }
            for name, m in sorted(members.items())
        },
        "groups": groups,
        "pending": [to_dict(command) for command in pending],
        "services": service_verdicts(config, observations, now),
        "clocks": observer_clocks(config, observations, now),
        "shadows": coordinator.shadows(),
        "observations": [to_dict(o) for o in observations],
    }


def observer_clocks(
    config: Config, observations: list[Observation], now: float
) -> dict[str, dict[str, Any]]:
    """instance -> how far its newest stamp is from the reader's clock, and whether that is
    more than a heartbeat (its clock is off, or it stopped publishing). The leader judges
    freshness on its own clock, so such skew changes no decision; it is shown to be fixed."""
    newest: dict[str, float] = {}
    for obs in observations:
        newest[obs.instance] = max(obs.at, newest.get(obs.instance, obs.at))
    margin = config.cluster.daemon.heartbeat_s + 1.0
    return {
        instance: {"offset_s": round(at - now, 3), "off": abs(at - now) > margin}
        for instance, at in sorted(newest.items())
    }


def _backup(config: Config, group: str) -> bool:
    steering = config.groups[group].steering
    return bool(getattr(steering, "backup", True))


def service_verdicts(
    config: Config, observations: list[Observation], now: float
) -> dict[str, dict[str, dict[str, Any]]]:
    """site -> service -> {"votes": observer site -> verdict, "targets": ...}.

    An observer site's vote follows the core's rule (most of its instances with a fresh
    verdict); `unknown` when it has no decided vote. Per target, each observer's own verdict.
    """
    stale_after_s = config.policy.stale_after_s
    fresh = index(observations, now, stale_after_s)
    latest: dict[str, dict[str, Observation]] = {}
    for obs in observations:
        latest.setdefault(obs.target, {})[obs.instance] = obs
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for site_name, site in config.sites.items():
        for name, service in site.services.items():
            targets = tuple(target_key(site_name, name, t) for t in service.targets())
            layout = ServiceLayout(
                site_name, name, service.role == "critical", targets, service.min_up
            )
            votes = service_votes(layout, fresh)
            per_target = {
                target.split("/", 2)[2]: {
                    instance: {
                        "site": obs.site,
                        "verdict": obs.verdict if now - obs.at < stale_after_s else "stale",
                        "reason": obs.reason,
                        "since": obs.since,
                        "at": obs.at,
                    }
                    for instance, obs in sorted(latest.get(target, {}).items())
                }
                for target in targets
            }
            result.setdefault(site_name, {})[name] = {
                "kind": service.kind,
                "role": service.role,
                "votes": {
                    observer: votes.get(observer, "unknown") for observer in config.observer_sites
                },
                "targets": per_target,
            }
    return result


# --- the table -------------------------------------------------------------------------------


def _graceful(state: GroupState, config: Config) -> dict[str, Any] | None:
    """A running graceful switchover: its stage, deadline, the TTL the records carry now."""
    plan = state.graceful
    if plan is None:
        return None
    return {
        "stage": plan.stage,
        "method": plan.method,
        "from_site": plan.from_site,
        "to_site": plan.to_site,
        "at": plan.at,
        "until": plan.until,
        "ttl_s": plan.ttl_s,
        "by": plan.command.by if plan.command else "",
    }
