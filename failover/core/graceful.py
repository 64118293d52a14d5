"""A planned switchover that loses nothing: its stages, their deadlines and the only moves.

A graceful switchover (`Command.graceful`, else `policy.graceful_switchover`) runs as stages
kept in the group's desired state (`GroupState.graceful`), each with a deadline by which it
moves on whatever happens, so that the plan always ends:

DNS group (T: the switch; TTL: the records' configured TTL, the one caches may hold):
    preparing   from T - TTL: the records carry `graceful_ttl_s` (a fenced update, new epoch),
                so that by T no cache holds the old answer for longer than the short TTL.
    switching   at T: the pre-checks run again, then the usual fenced update to the new
                site; it waits until every name server answers it (or `graceful_verify_s`).
                Failed pre-checks at T: no switch, straight to restoring.
    draining    until T + TTL: caches that fetched before T expire; records keep the short TTL.
    restoring   the configured TTL again; ends once every server answers it.

Every move of the plan is a change of desired state, so each one takes a new epoch (the
DNS steering writes the group again under it: the same records, the TTL of the stage).

BGP group (T: the switch):
    switching   at T the old site is **held** (one prepend: still preferred over a backup,
                never over a primary), the new one backup; the usual confirmed order then
                promotes the new site (never two primaries).
    draining    the new site is primary, the old one stays held for `drain_s` after the new
                site confirmed primary (or `graceful_verify_s` more), then it becomes a
                plain backup (new epoch) and the plan ends.

A failover (any switch the plan did not start) cancels the plan at once: failover wins, and
the cancellation is a decision of its own (`graceful_cancelled`). Every move is in
`TRANSITIONS`; any other raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from failover.config.model import BgpSteering, DnsSteering
from failover.core.cycle import Cycle, View
from failover.core.model import Command, Graceful, GracefulStage, GroupState, Method, PreCheck
from failover.core.prechecks import blocking, prechecks
from failover.core.transitions import IllegalTransition

if TYPE_CHECKING:
    from failover.core.policy import Engine

STAGES: dict[GracefulStage, str] = {
    "preparing": "DNS: the records carry the short TTL until the switch",
    "switching": "the switch: DNS updated and verified; BGP: old site held, new one promoted",
    "draining": "the old site drains: BGP held for drain_s; DNS caches expire for one old TTL",
    "restoring": "DNS: the configured TTL is written back and verified",
}

# (method, stage or None for no plan, event) -> next stage (None: the plan ended)
TRANSITIONS: dict[tuple[Method, GracefulStage | None, str], GracefulStage | None] = {
    ("dns", None, "prepare"): "preparing",
    ("dns", "preparing", "switch"): "switching",
    ("dns", "preparing", "refuse"): "restoring",  # the pre-checks failed at T: no switch
    ("dns", "switching", "switched"): "draining",
    ("dns", "draining", "drained"): "restoring",
    ("dns", "restoring", "restored"): None,
    ("bgp", None, "switch"): "switching",
    ("bgp", "switching", "switched"): "draining",  # the new site was promoted
    ("bgp", "draining", "drained"): None,
    # a failover (a switch the plan did not start) cancels the plan in any stage
    ("dns", "preparing", "cancel"): None,
    ("dns", "switching", "cancel"): None,
    ("dns", "draining", "cancel"): None,
    ("dns", "restoring", "cancel"): None,
    ("bgp", "switching", "cancel"): None,
    ("bgp", "draining", "cancel"): None,
}


def move(method: Method, stage: GracefulStage | None, event: str) -> GracefulStage | None:
    try:
        return TRANSITIONS[(method, stage, event)]
    except KeyError:
        raise IllegalTransition(
            f"no graceful {method} transition from {stage!r} on {event!r}"
        ) from None


def method(engine: Engine, group: str) -> Method:
    return "bgp" if isinstance(engine.config.groups[group].steering, BgpSteering) else "dns"


def wanted(engine: Engine, command: Command) -> bool:
    """Whether a switchover command is graceful: its own word, else the policy's default."""
    if command.kind != "switchover":
        return False
    return engine.policy.graceful_switchover if command.graceful is None else command.graceful


def old_ttl_s(engine: Engine, group: str) -> float:
    """How long before T a graceful switchover of `group` starts (DNS: its configured TTL)."""
    steering = engine.config.groups[group].steering
    return float(steering.ttl) if isinstance(steering, DnsSteering) else 0.0


def due_at(engine: Engine, group: str, command: Command) -> float | None:
    """When a scheduled switchover must start (None: it is not scheduled): a graceful DNS
    one one old TTL before its time, to lower the TTL first."""
    if command.at is None:
        return None
    if wanted(engine, command) and method(engine, group) == "dns":
        return command.at - old_ttl_s(engine, group)
    return command.at


def dns_ttl(state: GroupState, configured: int) -> int:
    """The TTL a DNS group's records carry under `state`."""
    plan = state.graceful
    return plan.ttl_s if plan is not None and plan.ttl_s is not None else configured


def _moved(cycle: Cycle, event: str, **changes: object) -> Graceful | None:
    plan = cycle.state.graceful
    assert plan is not None
    stage = move(plan.method, plan.stage, event)
    return None if stage is None else replace(plan, stage=stage, **changes)  # type: ignore[arg-type]


def start(
    engine: Engine, cycle: Cycle, command: Command, checks: tuple[PreCheck, ...], forced: str
) -> None:
    """Begin a graceful switchover whose pre-checks passed (now: its start is due)."""
    state, now = cycle.state, cycle.now
    target, group = command.site or "", state.group
    how = method(engine, group)
    if how == "bgp":
        plan = Graceful("switching", how, state.active, target, now, now, command=command)
        assert move(how, None, "switch") == plan.stage
        _switch(engine, cycle, plan, forced)
        assert cycle.state.demote_by is not None
        cycle.state = replace(cycle.state, graceful=replace(plan, until=cycle.state.demote_by))
    else:
        old = old_ttl_s(engine, group)
        at = command.at if command.at is not None and command.at > now else now + old
        short = engine.policy.graceful_ttl_s
        stage = move(how, None, "prepare")
        assert stage is not None
        plan = Graceful(stage, how, state.active, target, at, at, short, command=command)
        cycle.state = replace(
            state,
            graceful=plan,
            epoch=state.epoch + 1,
            code="graceful_preparing",
            reason=f"graceful switchover to {target} by {command.by}: short TTL until the switch",
            by=command.by,
            changed_at=now,
        )
        late = (
            f" (only {at - now:.0f} s ahead: caches may hold the old answer up to "
            f"{old - (at - now):.0f} s past the switch)"
            if at - now < old
            else ""
        )
        cycle.say(
            "desired",
            "graceful_preparing",
            f"graceful switchover to {target} by {command.by}{forced}: records get a "
            f"{short} s TTL now (configured {old:g} s), switch in {at - now:.0f} s{late}, "
            f"epoch {cycle.state.epoch}",
            by=command.by,
            stage=stage,
        )
        cycle.wake(at)
    cycle.say(
        "command",
        "accepted",
        f"graceful switchover to {target} started{forced}: {cycle.state.graceful.stage}"  # type: ignore[union-attr]
        f", epoch {cycle.state.epoch}",
        checks=checks,
        command_id=command.id,
        by=command.by,
    )


def _switch(engine: Engine, cycle: Cycle, plan: Graceful, forced: str) -> None:
    """The switch itself (BGP at start, DNS at T): the usual fenced change of active site,
    with the plan in its `switching` stage; the override as for any switchover."""
    command = plan.command
    assert command is not None
    why = f": {command.reason}" if command.reason else ""
    cycle.state = replace(cycle.state, graceful=None)  # begin_switch cancels a running plan
    engine.begin_switch(
        cycle,
        plan.to_site,
        "switchover",
        f"graceful switchover to {plan.to_site} by {command.by}{why}{forced}",
        command.by,
        graceful=True,
    )
    held = replace(plan, stage="switching", until=cycle.now + engine.policy.graceful_verify_s)
    cycle.state = engine.set_override(
        replace(cycle.state, graceful=held),
        plan.to_site,
        command.by,
        command.reason,
        cycle.now,
        command.expires_s,
    )


def cancel(cycle: Cycle, why: str) -> None:
    """A switch the plan did not start (a failover) ends the plan: failover wins."""
    plan = cycle.state.graceful
    assert plan is not None
    move(plan.method, plan.stage, "cancel")
    cycle.state = replace(cycle.state, graceful=None)
    cycle.say(
        "desired",
        "graceful_cancelled",
        f"graceful switchover from {plan.from_site} to {plan.to_site} cancelled while "
        f"{plan.stage}: {why}",
        stage=plan.stage,
    )


def promoted(engine: Engine, cycle: Cycle) -> None:
    """BGP: the new site was just promoted; the old one stays held for the drain."""
    plan = _moved(cycle, "switched", until=cycle.now + engine.policy.drain_s)
    assert plan is not None
    cycle.state = replace(cycle.state, graceful=plan, code="graceful_draining")
    cycle.say(
        "desired",
        "graceful_draining",
        f"{plan.to_site} promoted; {plan.from_site} stays held for its "
        f"{engine.policy.drain_s:g} s drain once {plan.to_site} confirmed primary, "
        f"epoch {cycle.state.epoch}",
        stage=plan.stage,
    )


def _verified(view: View, state: GroupState, sites: Iterable[str]) -> bool:
    """Every site's applied state is at the current epoch or later, verified."""
    for site in sites:
        applied = view.applied.get((state.group, site))
        if applied is None or applied.epoch < state.epoch or not applied.verified:
            return False
    return True


def advance(engine: Engine, cycle: Cycle, view: View) -> bool:
    """Move a running plan on when its stage is done or its deadline passed; True when this
    cycle switched the group (nothing else may then decide)."""
    state, now = cycle.state, cycle.now
    plan = state.graceful
    if plan is None or state.phase == "switching":
        return False  # no plan; or BGP switching: the usual promotion rule runs it
    sites = engine.layout.serving
    if plan.stage == "preparing":
        if now < plan.until:
            cycle.wake(plan.until)
            return False
        return _at_t(engine, cycle, plan)
    if plan.stage == "switching":  # DNS: every name server answers the new site
        done = _verified(view, state, sites)
        if not done and now < plan.until:
            return _waiting(cycle, plan, "every name server to answer the switch")
        drained_at = max(now, plan.at + old_ttl_s(engine, state.group))
        nxt = _moved(cycle, "switched", until=drained_at)
        cycle.state = replace(
            state, graceful=nxt, epoch=state.epoch + 1, code="graceful_draining", changed_at=now
        )
        cycle.say(
            "desired",
            "graceful_draining",
            (
                f"every name server answers {plan.to_site} at epoch {state.epoch}"
                if done
                else f"not every name server answered {plan.to_site} within "
                f"{engine.policy.graceful_verify_s:g} s; going on"
            )
            + f"; the short TTL stays for {drained_at - now:.0f} s while caches expire, "
            f"epoch {cycle.state.epoch}",
            stage="draining",
            verified=done,
        )
        cycle.wake(drained_at)
        return False
    if plan.stage == "draining" and plan.method == "dns":
        if now < plan.until:
            cycle.wake(plan.until)
            return False
        _restore(engine, cycle, plan, "caches of the old answer expired")
        return False
    if plan.stage == "draining":  # BGP
        confirmed = _verified(view, state, [plan.to_site])
        late = plan.until + engine.policy.graceful_verify_s
        if now < plan.until or (not confirmed and now < late):
            return _waiting(
                cycle,
                plan,
                f"{plan.from_site} to drain" if confirmed else f"{plan.to_site} to confirm primary",
                late if now >= plan.until else plan.until,
            )
        return _done(
            cycle,
            "drained",
            f"{plan.from_site} drained for {engine.policy.drain_s:g} s"
            + ("" if confirmed else f" ({plan.to_site} did not confirm primary)")
            + "; it becomes a plain backup",
        )
    # restoring (DNS): every name server answers the configured TTL's update
    done = _verified(view, state, sites)
    if not done and now < plan.until:
        return _waiting(cycle, plan, "every name server to answer the configured TTL")
    return _done(
        cycle,
        "restored",
        (
            f"configured TTL back on every name server at epoch {state.epoch}"
            if done
            else f"configured TTL written at epoch {state.epoch}, not verified on every name "
            f"server within {engine.policy.graceful_verify_s:g} s"
        )
        + "; plan done",
        verified=done,
    )


def _at_t(engine: Engine, cycle: Cycle, plan: Graceful) -> bool:
    """DNS at T: the pre-checks again, then the switch; failed ones restore the TTL."""
    command = plan.command
    assert command is not None
    bare = replace(cycle.state, graceful=None)
    checks = prechecks(engine, bare, cycle.health, plan.to_site, cycle.now)
    stops = blocking(checks, scheduled=False, force=command.force)
    if stops:
        why = "; ".join(f"{c.name}: {c.detail}" for c in stops)
        _restore(engine, cycle, plan, f"the switch to {plan.to_site} was refused ({why})", "refuse")
        return False
    failed = [c.name for c in checks if not c.passed]
    _switch(engine, cycle, plan, (" (forced past " + ", ".join(failed) + ")") if failed else "")
    return True


def _restore(
    engine: Engine, cycle: Cycle, plan: Graceful, why: str, event: str = "drained"
) -> None:
    state = cycle.state
    nxt = _moved(cycle, event, ttl_s=None, until=cycle.now + engine.policy.graceful_verify_s)
    cycle.state = replace(
        state,
        graceful=nxt,
        epoch=state.epoch + 1,
        code="graceful_restoring",
        changed_at=cycle.now,
    )
    cycle.say(
        "desired",
        "graceful_restoring",
        f"{why}; records get their configured TTL back, epoch {cycle.state.epoch}",
        stage="restoring",
    )


def _done(cycle: Cycle, event: str, text: str, **fields: Any) -> bool:
    """The plan's last move (`drained`, `restored`): it ends, at a new epoch."""
    state = cycle.state
    cycle.state = replace(
        state,
        graceful=_moved(cycle, event),
        epoch=state.epoch + 1,
        code="graceful_done",
        changed_at=cycle.now,
    )
    cycle.say(
        "desired", "graceful_done", f"{text}, epoch {cycle.state.epoch}", stage="done", **fields
    )
    return False


def _waiting(cycle: Cycle, plan: Graceful, what: str, until: float | None = None) -> bool:
    deadline = plan.until if until is None else until
    cycle.wake(deadline)
    cycle.say(
        "info",
        "graceful_waiting",
        f"graceful switchover to {plan.to_site} {plan.stage}: waiting for {what} "
        f"(at most {max(0.0, deadline - cycle.now):.1f} s more)",
        stage=plan.stage,
    )
    return False
