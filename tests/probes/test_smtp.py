"""SMTP checks against a real aiosmtpd server (with STARTTLS) and one that greets with 421."""

from __future__ import annotations

from failover.config.model import SmtpCheck
from failover.testing.servers.process import free_port
from failover.testing.servers.smtp import SmtpServer
from tests.probes.conftest import Tls, probe


def smtp(**fields: object) -> SmtpCheck:
    return SmtpCheck.model_validate({"type": "smtp", **fields})


def test_banner_and_ehlo_pass(smtp_server: SmtpServer) -> None:
    result = probe(smtp(), smtp_server.endpoint)
    assert result.ok
    assert result.reason == f"SMTP banner 220, EHLO ok from {smtp_server.endpoint}"


def test_starttls_with_the_custom_ca_passes(smtp_server: SmtpServer, tls: Tls) -> None:
    check = smtp(starttls=True, tls={"ca_file": tls.ca_file, "server_name": "mail.example.test"})
    result = probe(check, smtp_server.endpoint)
    assert result.ok, result.reason
    assert result.reason.endswith(f"STARTTLS ok from {smtp_server.endpoint}")


def test_starttls_with_an_unknown_ca_is_a_tls_error(smtp_server: SmtpServer) -> None:
    result = probe(smtp(starttls=True), smtp_server.endpoint)
    assert not result.ok
    assert result.reason.startswith(f"TLS error from {smtp_server.endpoint}")


def test_wrong_banner_fails(smtp_refusing: SmtpServer) -> None:
    result = probe(smtp(), smtp_refusing.endpoint)
    assert not result.ok
    assert result.reason.startswith(f"SMTP banner 421 from {smtp_refusing.endpoint}")


def test_starttls_not_offered_fails(
    smtp_refusing: SmtpServer, smtp_server: SmtpServer, workdir: object
) -> None:
    from pathlib import Path

    assert isinstance(workdir, Path)
    plain = SmtpServer(workdir / "smtp-plain").start()
    try:
        result = probe(smtp(starttls=True), plain.endpoint)
    finally:
        plain.stop()
    assert not result.ok
    assert result.reason == f"{plain.endpoint} does not offer STARTTLS"


def test_refused() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = probe(smtp(), endpoint)
    assert not result.ok
    assert result.reason == f"connection refused by {endpoint}"
