"""The request guard and request bodies, without a cluster: real Escher signatures, a clock
given by the test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from failover.api.auth import (
    ApiKeysError,
    RequestGuard,
    parse_auth_header,
    read_keys,
    signed_headers,
)
from failover.api.commands import BadRequest, command_from_body, parse_at, parse_duration
from failover.api.limits import FailureLimiter, source_of
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
    settings = ApiOptions(
        clock_skew_s=options.get("skew", 60.0),
        max_failures=int(options.get("failures", 3)),
        max_source_failures=int(options.get("source_failures", 6)),
        backoff_s=options.get("backoff", 2.0),
        lockout_s=options.get("lockout", 30.0),
    )
    return RequestGuard(settings, ADDRESS, {"ops": "s3cret", "other": "x"}, clock=clock)


def request(
    body: str = "{}",
    *,
    key: str = "ops",
    secret: str = "s3cret",
    at: float = T0,
    address: str = ADDRESS,
    path: str = "/freeze",
) -> tuple[str, str, list[tuple[str, str]], str]:
    headers = signed_headers("POST", address, path, body, key, secret, SCOPE, at=at)
    return "POST", path, list(headers.items()), body


def test_a_signed_request_passes_once_and_its_replay_is_refused() -> None:
    clock = Clock()
    check = guard(clock)
    signed = request('{"reason": "x"}')
    accepted = check.check(*signed)
    assert accepted.status == 200 and accepted.signature and accepted.valid_until == T0 + 61
    check.remember(accepted)  # the API does so once the command is queued
    clock.now += 10
    replay = check.check(*signed)
    assert (replay.status, replay.key_id) == (403, "ops") and "replayed" in replay.reason
    clock.now += 60  # past the window: refused as expired
    late = check.check(*signed)
    assert late.status == 401 and "expired" in late.reason
    assert check.seen == {}  # the replay memory forgot it


def test_changed_body_path_or_host_is_refused() -> None:
    check = guard(Clock(), failures=100, source_failures=100)
    method, path, headers, _ = request('{"reason": "a"}')
    assert check.check(method, path, headers, '{"reason": "b"}').reason == "wrong signature"
    assert check.check(method, "/unfreeze", headers, '{"reason": "a"}').status == 401
    elsewhere = check.check(*request(address="127.0.0.1:8701"))
    assert elsewhere.status == 401 and "signed for host '127.0.0.1:8701'" in elsewhere.reason
    twice = check.check(method, path, [*headers, ("Host", ADDRESS)], '{"reason": "a"}')
    assert twice.status == 401 and "exactly one Host" in twice.reason


def test_an_unknown_key_id_reads_as_a_wrong_signature() -> None:
    check = guard(Clock())
    unknown = check.check(*request(key="nobody", secret="s3cret"))
    wrong = check.check(*request(secret="nope"))
    assert unknown.reason == wrong.reason == "wrong signature"
    assert unknown.status == wrong.status == 401


def test_missing_malformed_and_future_signatures() -> None:
    check = guard(Clock())
    assert check.check("POST", "/freeze", [("Host", ADDRESS)], "{}").status == 401
    bad = check.check("POST", "/freeze", [("Host", ADDRESS), ("X-Escher-Auth", "nonsense")], "")
    assert bad.status == 401 and bad.reason.startswith("malformed signature")
    future = check.check(*request(at=T0 + 3600))
    assert future.status == 401 and "expired (or not yet valid)" in future.reason


def test_a_crafted_auth_header_is_refused_at_once() -> None:
    """escherauth's parser backtracks for seconds on these (2.8 s for 11 KB here)."""
    check = guard(Clock(), source_failures=100)
    for repeat in (100, 400, 2000):
        crafted = "ESR-HMAC-SHA256 " + "Credential=a,SignedHeaders=a," * repeat
        started = time.perf_counter()
        outcome = check.check(
            "POST", "/freeze", [("Host", ADDRESS), ("X-Escher-Auth", crafted)], "{}"
        )
        assert time.perf_counter() - started < 0.5
        assert outcome.status == 401 and outcome.reason.startswith("malformed signature")
    assert (
        parse_auth_header(
            "ESR-HMAC-SHA256 Credential=ops/20270115/a/b, SignedHeaders="
            "host;x-escher-date, Signature=" + "0" * 64
        )
        is not None
    )
    assert (
        parse_auth_header(
            "ESR-HMAC-SHA256 Credential=ops/20270115/a/b, SignedHeaders="
            "host;x-escher-date, Signature=" + "0" * 63
        )
        is None
    )


def test_forged_requests_never_lock_the_operator_out() -> None:
    """Finding 1: forged and replayed requests naming `ops` slow down their source only."""
    clock = Clock()
    check = guard(clock, backoff=2.0, lockout=30.0)
    valid = request('{"reason": "captured"}')
    check.remember(check.check(*valid, source="10.0.0.1"))
    refusals = [check.check(*request(secret="forged"), source="10.9.9.9") for _ in range(3)]
    assert [r.status for r in refusals] == [401, 401, 401]
    assert "requests from 10.9.9.9 wait 2 s" in refusals[-1].reason
    assert check.check(*request(), source="10.9.9.9").status == 429  # even a valid one waits
    for _ in range(5):
        assert check.check(*valid, source="10.9.9.8").status in (403, 429)  # replays
    clock.now += 1
    operator = check.check(*request(at=clock.now), source="10.0.0.1")
    assert operator.status == 200, operator.reason
    clock.now += 2  # the backoff passed; the next failure doubles it
    again = check.check(*request(secret="forged", at=clock.now), source="10.9.9.9")
    assert "wait 4 s" in again.reason
    other_key = check.check(*request(key="other", secret="x", at=clock.now), source="10.9.9.9")
    assert other_key.status == 200  # its own key's bucket: 3 failures, the source limit is 6


def test_a_source_is_limited_across_key_ids_and_memory_is_bounded() -> None:
    clock = Clock()
    check = guard(clock, source_failures=4)
    for index in range(4):
        check.check(*request(key=f"k{index}", secret="x"), source="10.9.9.9")
    assert check.check(*request(), source="10.9.9.9").status == 429
    assert check.check(*request(), source="10.0.0.1").status == 200
    limiter = FailureLimiter(3, 10, 1.0, 30.0, max_tracked=100)
    for index in range(1000):
        limiter.failed(f"10.0.{index // 256}.{index % 256}", "ops", T0)
    assert len(limiter) == 100
    assert source_of("2001:db8::1") == source_of("2001:db8::ffff") == "2001:db8::/64"
    assert source_of("::ffff:10.0.0.1") == "10.0.0.1" and source_of(None) == "unknown"


def test_no_keys_configured_refuses_everything() -> None:
    check = RequestGuard(ApiOptions(), ADDRESS, {}, clock=Clock())
    refused = check.check(*request())
    assert refused.status == 403 and "no API keys" in refused.reason


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# comment\n\nops:abc\nci-bot:def:with:colons\n")
    assert read_keys(path) == {"ops": "abc", "ci-bot": "def:with:colons"}
    for text, problem in (
        ("ops\n", "line 1"),
        ("bad key:x\n", "line 1"),
        ("ops:a\nops:b\n", "line 2: key id ops given twice"),
    ):
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
cluster: {name: c, zookeeper: {hosts: ["127.0.0.1:2181"], insecure_open_acl: true}}
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
        "switchover",
        '{"site": "dc2", "group": "web", "force": true, "at": "+1m", '
        '"expires": "30m", "reason": "drill"}',
        "ops",
        config,
        T0,
    )
    assert (command.kind, command.site, command.group, command.by) == (
        "switchover",
        "dc2",
        "web",
        "ops",
    )
    assert command.force and command.at == T0 + 60 and command.expires_s == 1800
    assert command.graceful is None  # the policy's default
    gentle = command_from_body("switchover", '{"site": "dc2", "graceful": true}', "ops", config, T0)
    assert gentle.graceful is True
    freeze = command_from_body("freeze", "", "ops", config, T0)
    assert (freeze.kind, freeze.group, freeze.reason) == ("freeze", None, "")
    for kind, body, problem in (
        ("switchover", "{}", "not a serving site"),
        ("switchover", '{"site": "dc2", "group": "nope"}', "unknown group 'nope'"),
        ("switchover", '{"site": "dc2", "force": "yes"}', "force: must be true or false"),
        ("switchover", '{"site": "dc2", "graceful": 1}', "graceful: must be true or false"),
        ("switchover", '{"site": "dc2", "expires": -1}', "expires: must be more than 0"),
        ("freeze", '{"site": "dc2"}', "unknown field(s) site"),
        ("freeze", "[1]", "must be a JSON object"),
        ("unfreeze", "{", "not JSON"),
    ):
        with pytest.raises(BadRequest, match=problem.replace("(", r"\(").replace(")", r"\)")):
            command_from_body(kind, body, "ops", config, T0)
