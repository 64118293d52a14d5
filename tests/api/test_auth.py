"""The request guard and request bodies, without a cluster: real Escher signatures, a clock
given by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.api.auth import ApiKeysError, RequestGuard, read_keys, signed_headers
from failover.api.commands import BadRequest, command_from_body, parse_at, parse_duration
from failover.config import parse_config
from failover.config.model import ApiOptions

ADDRESS = "127.0.0.1:8700"
SCOPE = "failover/api/escher_request"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def guard(clock: Clock, **options: float) -> RequestGuard:
    settings = ApiOptions(clock_skew_s=options.get("skew", 60.0), max_failures=3,
                          lockout_s=options.get("lockout", 30.0))
    return RequestGuard(settings, ADDRESS, {"ops": "s3cret", "other": "x"}, clock=clock)


def request(body: str = "{}", *, key: str = "ops", secret: str = "s3cret", at: float = T0,
            address: str = ADDRESS, path: str = "/freeze") -> tuple[str, str, list[tuple[str,
                                                                                       str]], str]:
    headers = signed_headers("POST", address, path, body, key, secret, SCOPE, at=at)
    return "POST", path, list(headers.items()), body


def test_a_signed_request_passes_once_and_its_replay_is_refused() -> None:
    clock = Clock()
    check = guard(clock)
    signed = request('{"reason": "x"}')
    assert check.check(*signed).status == 200
    clock.now += 10
    replay = check.check(*signed)
    assert (replay.status, replay.key_id) == (403, "ops") and "replayed" in replay.reason
    clock.now += 60  # past the window: Escher itself refuses it as expired
    late = check.check(*signed)
    assert late.status == 401 and "expired" in late.reason
    assert check.seen == {}  # the replay memory forgot it


def test_changed_body_path_or_host_is_refused() -> None:
    check = guard(Clock())
    method, path, headers, _ = request('{"reason": "a"}')
    assert check.check(method, path, headers, '{"reason": "b"}').reason == "wrong signature"
    assert check.check(method, "/unfreeze", headers, '{"reason": "a"}').status == 401
    elsewhere = check.check(*request(address="127.0.0.1:8701"))
    assert elsewhere.status == 401 and "signed for host '127.0.0.1:8701'" in elsewhere.reason


def test_missing_malformed_and_future_signatures() -> None:
    check = guard(Clock())
    assert check.check("POST", "/freeze", [("Host", ADDRESS)], "{}").status == 401
    bad = check.check("POST", "/freeze", [("Host", ADDRESS), ("X-Escher-Auth", "nonsense")], "")
    assert bad.status == 401 and bad.reason.startswith("malformed signature")
    future = check.check(*request(at=T0 + 3600))
    assert future.status == 401 and "expired (or not yet valid)" in future.reason


def test_lockout_after_consecutive_failures_per_key() -> None:
    clock = Clock()
    check = guard(clock, lockout=30.0)
    assert check.check(*request(secret="no")).status == 401
    assert check.check(*request()).status == 200  # a success resets the count
    for _ in range(2):
        assert check.check(*request(secret="no")).status == 401
    third = check.check(*request(secret="no"))
    assert "locked out for 30 s after 3 consecutive failures" in third.reason
    clock.now += 1
    locked = check.check(*request(at=clock.now))
    assert locked.status == 429 and locked.key_id == "ops"
    other = check.check(*request(key="other", secret="x", at=clock.now))
    assert other.status == 200
    clock.now += 30
    assert check.check(*request(at=clock.now)).status == 200


def test_no_keys_configured_refuses_everything() -> None:
    check = RequestGuard(ApiOptions(), ADDRESS, {}, clock=Clock())
    refused = check.check(*request())
    assert refused.status == 403 and "no API keys" in refused.reason


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# comment\n\nops:abc\nci-bot:def:with:colons\n")
    assert read_keys(path) == {"ops": "abc", "ci-bot": "def:with:colons"}
    for text, problem in (("ops\n", "line 1"), ("bad key:x\n", "line 1"),
                          ("ops:a\nops:b\n", "line 2: key id ops given twice")):
        path.write_text(text)
        with pytest.raises(ApiKeysError, match=problem):
            read_keys(path)
    with pytest.raises(ApiKeysError, match="cannot read"):
        read_keys(tmp_path / "absent")


def test_durations_and_times() -> None:
    assert parse_duration("90") == 90.0
    assert parse_duration("30m") == 1800.0
    assert parse_duration("2h") == 7200.0
    assert parse_at("+30s", T0) == T0 + 30
    assert parse_at("2027-01-15T08:00:00Z", T0) == 1800000000.0
    assert parse_at("2027-01-15T09:00:00+01:00", T0) == 1800000000.0
    assert parse_at("2027-01-15T08:00:00", T0) == parse_at("2027-01-15T08:00:00Z", T0)
    for bad in ("soon", "0", "-5m", "3w"):
        with pytest.raises(BadRequest):
            parse_duration(bad)
    with pytest.raises(BadRequest, match="is not a time"):
        parse_at("tomorrow", T0)


CONFIG = """
cluster: {name: c, zookeeper: {hosts: ["127.0.0.1:2181"]}}
sites:
  dc1: {services: {app: {kind: app, endpoints: ["127.0.0.1:1"], check: {type: tcp}}}}
  dc2: {services: {app: {kind: app, endpoints: ["127.0.0.1:2"], check: {type: tcp}}}}
instances: {a: {site: dc1}}
groups:
  web: {services: [app], steering: {method: bgp, prefix: 203.0.113.0/24, sites: {dc1: {}, dc2: {}}}}
"""


def test_request_bodies() -> None:
    config = parse_config(CONFIG)
    command = command_from_body(
        "switchover", '{"site": "dc2", "group": "web", "force": true, "at": "+1m", '
        '"expires": "30m", "reason": "drill"}', "ops", config, T0)
    assert (command.kind, command.site, command.group, command.by) == ("switchover", "dc2",
                                                                      "web", "ops")
    assert command.force and command.at == T0 + 60 and command.expires_s == 1800
    freeze = command_from_body("freeze", "", "ops", config, T0)
    assert (freeze.kind, freeze.group, freeze.reason) == ("freeze", None, "")
    for kind, body, problem in (
        ("switchover", "{}", "not a serving site"),
        ("switchover", '{"site": "dc2", "group": "nope"}', "unknown group 'nope'"),
        ("switchover", '{"site": "dc2", "force": "yes"}', "force: must be true or false"),
        ("switchover", '{"site": "dc2", "expires": -1}', "expires: must be more than 0"),
        ("freeze", '{"site": "dc2"}', "unknown field(s) site"),
        ("freeze", "[1]", "must be a JSON object"),
        ("unfreeze", "{", "not JSON"),
    ):
        with pytest.raises(BadRequest, match=problem.replace("(", r"\(").replace(")", r"\)")):
            command_from_body(kind, body, "ops", config, T0)
