"""End to end: a database failure moves both groups, switchovers, a freeze, the signed API."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from failover.api.auth import read_keys, signed_headers
from failover.lab.daemons import FAILOVER
from failover.lab.stack import OPERATOR_ERRORS, Stack
from failover.testing.servers.process import wait_until
from tests.e2e.conftest import audit_codes, epochs, post_in_client, watch

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def detection_bound_s(stack: Stack, site: str, service: str) -> float:
    check = stack.config.sites[site].services[service].check
    return check.interval_s * (check.fall - 1) + check.timeout_s


def test_database_failure_moves_both_groups_and_the_operator_switches_back(stack: Stack) -> None:
    assert stack.client_get() == "ok app dc1"
    before = epochs(stack)
    bound_s = (
        detection_bound_s(stack, "dc1", "db") + stack.config.policy.hold_down_s + 5.0
    )  # steering, on a busy machine
    stack.stop_service("dc1", "db")
    started = time.monotonic()
    samples = watch(
        stack, 30.0, until=lambda: stack.route() == ("dc2", "primary") and stack.dns_site() == "dc2"
    )
    took_s = time.monotonic() - started
    assert stack.route() == ("dc2", "primary") and stack.dns_site() == "dc2", samples[-5:]
    assert took_s < bound_s, f"traffic moved after {took_s:.1f} s (bound {bound_s:g} s)"
    assert all(
        route is None or route[0] == "dc1" or route == ("dc2", "primary") for _, route, _ in samples
    ), "dc2 carried traffic before it was promoted"
    stack.wait_steady("dc2", 15.0)
    assert stack.client_get() == "ok app dc2", "the client's request must reach dc2 now"
    assert stack.announcement("dc1") == "backup"
    assert stack.announcement("dc2") == "primary"
    after = epochs(stack)
    assert after["web"] == before["web"] + 2  # demote dc1, then promote dc2
    assert after["mail"] == before["mail"] + 1  # DNS moves at once
    codes = audit_codes(stack)
    assert ("web", "failover") in codes and ("web", "promoted") in codes
    assert ("mail", "failover") in codes

    done = stack.cli("switchover", "--to", "dc1", "--wait", "--reason", "db still down")
    assert done.returncode == 1 and "target_healthy" in done.stderr, done.stdout + done.stderr

    stack.start_service("dc1", "db")
    stack.wait_healthy(["dc1"], 20.0)
    assert stack.route() == ("dc2", "primary"), "failback is manual: nothing moves by itself"
    done = stack.cli("switchover", "--to", "dc1", "--wait", "--reason", "db repaired")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "web: applied and verified on dc1" in done.stdout
    stack.wait_steady("dc1", 15.0)
    assert stack.client_get() == "ok app dc1"


def test_manual_switchover_and_back(stack: Stack) -> None:
    done = stack.cli("switchover", "--to", "dc2", "--group", "web", "--reason", "drill", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stack.route() == ("dc2", "primary")
    assert stack.dns_site() == "dc1", "only the web group was asked to move"
    assert stack.announcement("dc1") == "backup"
    done = stack.cli("switchover", "--to", "dc2", "--group", "web")
    assert done.returncode == 1 and "already active" in done.stderr
    done = stack.cli(
        "switchover", "--to", "dc1", "--group", "web", "--reason", "drill over", "--wait"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stack.wait_steady("dc1", 15.0)
    reasons = [
        (e.payload.get("command") or {}).get("reason") for e in stack.operator(lambda c: c.audit())
    ]
    assert "drill" in reasons and "drill over" in reasons
    history = stack.cli("history", "--verify")
    assert history.returncode == 0 and "audit chain verified" in history.stdout, history.stderr


def test_a_route_changed_behind_the_agent_is_put_right(stack: Stack) -> None:
    """A stray stop hook (here: `failover demote` run by hand while the daemon runs) holds
    dc1's primary: the agent reads its kernel table back and announces primary again."""
    assert stack.route() == ("dc1", "primary")
    instance = next(i for i, placed in stack.config.instances.items() if placed.site == "dc1")
    argv = [FAILOVER, "demote", "--config", str(stack.config_path), "--instance", instance]
    done = stack.lab.exec("dc1", argv, timeout_s=20.0)
    assert done.returncode == 0, done.stdout + done.stderr
    log_path = stack.daemons[instance].process.log_path

    def noticed() -> bool:
        return "in effect where primary was applied" in log_path.read_text(errors="replace")

    wait_until(noticed, 20.0, "the agent noticed the held route")
    wait_until(lambda: stack.announcement("dc1") == "primary", 10.0, "dc1 announces primary")
    wait_until(lambda: stack.route() == ("dc1", "primary"), 10.0, "the isp sees dc1 primary")


def test_freeze_blocks_automatic_failover(stack: Stack) -> None:
    done = stack.cli("freeze", "--reason", "maintenance")
    assert done.returncode == 0, done.stdout + done.stderr
    before = epochs(stack)
    stack.stop_service("dc1", "db")
    wait_until(
        lambda: ("web", "frozen") in audit_codes(stack),
        20.0,
        "the leader refusing to fail over while frozen",
        retry_on=OPERATOR_ERRORS,
    )
    samples = watch(stack, 3.0)  # well past the hold-down: still nothing moves
    assert {route for _, route, _ in samples} == {("dc1", "primary")}
    assert {site for _, _, site in samples} == {"dc1"}
    assert epochs(stack) == before
    done = stack.cli("unfreeze", "--reason", "maintenance over")
    assert done.returncode == 0, done.stdout + done.stderr
    stack.wait_steady("dc2", 20.0)


# --- the signed API ----------------------------------------------------------------------------


def signed(
    stack: Stack, instance: str, path: str, body: dict[str, Any], at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    api = stack.config.cluster.api
    assert api is not None and api.keys_file is not None
    key_id, secret = next(iter(read_keys(api.keys_file).items()))
    text = json.dumps(body)
    return text.encode(), signed_headers(
        "POST",
        stack.config.instances[instance].api,
        path,
        text,
        key_id,
        secret,
        api.credential_scope,
        at=at,
    )


def noted(stack: Stack, fragment: str) -> bool:
    return any(fragment in note for note in notes(stack))


def notes(stack: Stack) -> list[str]:
    return [
        e.payload["decision"]["sentence"]
        for e in stack.operator(lambda c: c.audit())
        if e.payload.get("decision", {}).get("code") == "noted"
    ]


def refused(stack: Stack) -> list[str]:
    """The reasons of every recorded summary of refused API requests."""
    return [
        row["reason"]
        for summary in stack.operator(lambda c: c.refusals())
        for row in summary["rows"]
    ]


def test_signed_api_accepted_unsigned_expired_replayed_refused_and_audited(stack: Stack) -> None:
    instance = stack.instance_of("dc2")
    data, headers = signed(stack, instance, "/freeze", {"reason": "api drill"})
    code, body = post_in_client(stack, instance, "/freeze", data, headers)
    assert code == 202, body
    wait_until(
        lambda: all(
            s is not None and s.frozen for s in (stack.desired(g) for g in stack.config.groups)
        ),
        10.0,
        "frozen",
        retry_on=OPERATOR_ERRORS,
    )
    code, body = post_in_client(stack, instance, "/freeze", data, headers)
    assert code == 403 and "replayed" in body["error"], body

    data, _ = signed(stack, instance, "/unfreeze", {"reason": "unsigned"})
    code, body = post_in_client(stack, instance, "/unfreeze", data, {})
    assert code == 401 and "missing signature" in body["error"], body
    data, headers = signed(stack, instance, "/unfreeze", {"reason": "old"}, at=time.time() - 3600)
    code, body = post_in_client(stack, instance, "/unfreeze", data, headers)
    assert code == 401 and "expired" in body["error"], body
    assert all(s is not None and s.frozen for s in (stack.desired(g) for g in stack.config.groups))

    data, headers = signed(stack, instance, "/unfreeze", {"reason": "api drill over"})
    code, body = post_in_client(stack, instance, "/unfreeze", data, headers)
    assert code == 202, body
    wait_until(
        lambda: (
            not any(
                s is not None and s.frozen for s in (stack.desired(g) for g in stack.config.groups)
            )
        ),
        10.0,
        "unfrozen",
        retry_on=OPERATOR_ERRORS,
    )
    wait_until(
        lambda: any("accepted as" in note for note in notes(stack)),
        10.0,
        "an audit note of the accepted request",
        retry_on=OPERATOR_ERRORS,
    )
    for fragment in ("replayed", "missing signature", "expired"):  # counted, not audited
        wait_until(
            lambda f=fragment: any(reason.startswith(f) for reason in refused(stack)),  # type: ignore[misc]
            25.0,
            f"a refusal summary with {fragment!r}",
            retry_on=OPERATOR_ERRORS,
        )
