"""TCP checks, DNS checks against BIND, and Nagios-plugin commands (shell scripts)."""

from __future__ import annotations

import time
from pathlib import Path

from failover.config.model import CommandCheck, DnsCheck, TcpCheck
from failover.lab.netns import pid_alive
from failover.testing.servers.bind import LoopbackBind as Bind
from failover.testing.servers.http import HttpServer
from failover.testing.servers.process import free_port
from tests.probes.conftest import probe


def tcp(**fields: object) -> TcpCheck:
    return TcpCheck.model_validate({"type": "tcp", **fields})


def test_tcp_connect_passes(healthy_http: HttpServer) -> None:
    result = probe(tcp(), healthy_http.endpoint)
    assert result.ok
    assert result.reason == f"connected to {healthy_http.endpoint}"


def test_tcp_send_and_expect(healthy_http: HttpServer) -> None:
    request = "GET /health HTTP/1.0\r\n\r\n"
    assert probe(tcp(send=request, expect="200 OK"), healthy_http.endpoint).ok
    result = probe(tcp(send=request, expect="RFB 003"), healthy_http.endpoint)
    assert not result.ok
    assert result.reason == (
        f"{healthy_http.endpoint} closed the connection before sending 'RFB 003'"
    )


def test_tcp_expect_never_sent_times_out(healthy_http: HttpServer) -> None:
    result = probe(tcp(expect="220 ", timeout_s=0.3), healthy_http.endpoint)
    assert not result.ok
    assert result.reason == f"no answer from {healthy_http.endpoint} within 0.3 s"


def test_tcp_refused() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = probe(tcp(), endpoint)
    assert not result.ok
    assert result.reason == f"connection refused by {endpoint}"


def dns_check(**fields: object) -> DnsCheck:
    return DnsCheck.model_validate({"type": "dns", **fields})


def test_dns_answer_passes(bind: Bind) -> None:
    result = probe(dns_check(query="www.example.test"), bind.endpoint)
    assert result.ok
    assert result.reason == f"www.example.test A is 192.0.2.10, 192.0.2.11 at {bind.endpoint}"


def test_dns_expected_answer(bind: Bind) -> None:
    check = dns_check(query="www.example.test", expect=["192.0.2.11", "192.0.2.10"])
    assert probe(check, bind.endpoint).ok
    result = probe(dns_check(query="mail.example.test", expect=["192.0.2.26"]), bind.endpoint)
    assert not result.ok
    assert result.reason == (
        f"mail.example.test A is 192.0.2.25 at {bind.endpoint}, expected 192.0.2.26"
    )


def test_dns_nxdomain_and_refused(bind: Bind) -> None:
    result = probe(dns_check(query="nope.example.test"), bind.endpoint)
    assert result.reason == f"DNS NXDOMAIN for nope.example.test A from {bind.endpoint}"
    result = probe(dns_check(query="www.example.org"), bind.endpoint)
    assert not result.ok
    assert result.reason == f"DNS REFUSED for www.example.org A from {bind.endpoint}"


def test_dns_no_answer_of_that_type(bind: Bind) -> None:
    result = probe(dns_check(query="www.example.test", record_type="AAAA"), bind.endpoint)
    assert not result.ok
    assert result.reason == f"no answer for www.example.test AAAA from {bind.endpoint}"


def test_dns_server_not_there_fails(bind: Bind) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = probe(dns_check(query="www.example.test", timeout_s=0.3), endpoint)
    assert not result.ok
    assert endpoint in result.reason


def plugin(tmp_path: Path, body: str, **fields: object) -> CommandCheck:
    script = tmp_path / "plugin.sh"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return CommandCheck.model_validate({"type": "command", "command": [str(script)], **fields})


def test_plugin_ok_and_warning_pass(tmp_path: Path) -> None:
    result = probe(
        plugin(tmp_path, "echo 'HTTP OK - 12 ms|time=0.012s'; echo more; exit 0"), "command"
    )
    assert result.ok
    assert result.reason == "HTTP OK - 12 ms"
    result = probe(plugin(tmp_path, "echo 'load is 7'; exit 1"), "command")
    assert result.ok
    assert result.reason == "WARNING: load is 7"


def test_plugin_critical_and_unknown_fail(tmp_path: Path) -> None:
    result = probe(plugin(tmp_path, "echo 'DISK CRITICAL - / is 99% full'; exit 2"), "command")
    assert not result.ok
    assert result.reason == "DISK CRITICAL - / is 99% full"
    result = probe(plugin(tmp_path, "exit 3"), "command")
    assert not result.ok
    assert result.reason == "plugin exited 3 (UNKNOWN)"


def test_hanging_plugin_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    check = plugin(tmp_path, f"sleep 30 & echo $! > {pid_file}; wait", timeout_s=0.5)
    started = time.monotonic()
    result = probe(check, "command")
    assert time.monotonic() - started < 5
    assert not result.ok
    assert result.reason == "plugin did not finish within 0.5 s; its process group was killed"
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child), "the plugin's grandchild survived"


def test_missing_plugin_fails_clearly(tmp_path: Path) -> None:
    check = CommandCheck.model_validate(
        {"type": "command", "command": [str(tmp_path / "check_nothing")]}
    )
    result = probe(check, "command")
    assert not result.ok
    assert result.reason == f"cannot run {tmp_path / 'check_nothing'}: No such file or directory"
