"""HTTP(S) checks against a real aiohttp server with a test CA."""

from __future__ import annotations

from pathlib import Path

from failover.config.model import HttpCheck, TlsClient
from failover.testing.servers.http import HttpServer
from failover.testing.servers.process import free_port
from tests.probes.conftest import TLS_NAME, Tls, probe


def http(**fields: object) -> HttpCheck:
    return HttpCheck.model_validate({"type": "http", "path": "/health", **fields})


def test_healthy_answer_passes(healthy_http: HttpServer) -> None:
    result = probe(http(), healthy_http.endpoint)
    assert result.ok
    assert result.reason == f"HTTP 200 from {healthy_http.endpoint}"
    assert 0 < result.latency_s < 1


def test_wrong_status_fails_and_names_it(healthy_http: HttpServer) -> None:
    healthy_http.set_health(503)
    result = probe(http(), healthy_http.endpoint)
    assert not result.ok
    assert result.reason == f"HTTP 503 from {healthy_http.endpoint}"


def test_status_set_accepts_any_listed_status(healthy_http: HttpServer) -> None:
    assert probe(http(path="/status/204", expect_status=[200, 204]), healthy_http.endpoint).ok
    assert not probe(http(path="/status/204"), healthy_http.endpoint).ok


def test_body_regex(healthy_http: HttpServer) -> None:
    assert probe(http(body_regex=r"^ok app$"), healthy_http.endpoint).ok
    result = probe(http(body_regex=r"^ready"), healthy_http.endpoint)
    assert not result.ok
    assert "body does not match /^ready/" in result.reason


def test_host_header_is_sent(healthy_http: HttpServer) -> None:
    check = http(path="/host", host="shop.example.test", body_regex=r"host=shop\.example\.test")
    assert probe(check, healthy_http.endpoint).ok
    assert not probe(http(path="/host", body_regex="shop"), healthy_http.endpoint).ok


def test_redirects_are_not_followed_by_default(healthy_http: HttpServer) -> None:
    result = probe(http(path="/redirect"), healthy_http.endpoint)
    assert not result.ok
    assert result.reason == (
        f"HTTP 302 from {healthy_http.endpoint} (redirect to /health; redirects are not followed)"
    )
    assert probe(http(path="/redirect", follow_redirects=True), healthy_http.endpoint).ok


def test_refused() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = probe(http(), endpoint)
    assert not result.ok
    assert result.reason == f"connection refused by {endpoint}"


def test_slow_answer_fails_by_the_hard_timeout(healthy_http: HttpServer) -> None:
    healthy_http.set_health(200, delay_s=2.0)
    result = probe(http(timeout_s=0.3), healthy_http.endpoint)
    assert not result.ok
    assert result.reason == f"no answer from {healthy_http.endpoint} within 0.3 s"
    assert 0.29 < result.latency_s < 1.0


def test_disable_file_fails_without_probing(healthy_http: HttpServer, tmp_path: Path) -> None:
    flag = tmp_path / "maintenance"
    check = http(disable_file=str(flag))
    assert probe(check, healthy_http.endpoint).ok
    flag.touch()
    result = probe(check, healthy_http.endpoint)
    assert not result.ok
    assert result.reason == f"disabled by {flag}"


def https(tls: Tls | None, **fields: object) -> HttpCheck:
    client = TlsClient(ca_file=tls.ca_file if tls else None, server_name=TLS_NAME)
    return HttpCheck.model_validate(
        {"type": "https", "path": "/health", "tls": client.model_dump(), **fields}
    )


def test_https_with_the_custom_ca_passes(https_server: HttpServer, tls: Tls) -> None:
    result = probe(https(tls), https_server.endpoint)
    assert result.ok, result.reason


def test_https_sends_the_sni_name(https_server: HttpServer, tls: Tls) -> None:
    check = https(tls, path="/tls-name", body_regex=rf"sni={TLS_NAME}")
    assert probe(check, https_server.endpoint).ok


def test_https_with_an_unknown_ca_is_a_tls_error(https_server: HttpServer) -> None:
    result = probe(https(None), https_server.endpoint)
    assert not result.ok
    assert result.reason.startswith(f"TLS error from {https_server.endpoint}: ")
    assert "unable to get local issuer certificate" in result.reason


def test_https_wrong_server_name_is_a_tls_error(https_server: HttpServer, tls: Tls) -> None:
    check = HttpCheck.model_validate(
        {
            "type": "https",
            "path": "/health",
            "tls": {"ca_file": tls.ca_file, "server_name": "other.example.test"},
        }
    )
    result = probe(check, https_server.endpoint)
    assert not result.ok
    assert "TLS error" in result.reason and "other.example.test" in result.reason


def test_https_without_verification_passes(https_server: HttpServer) -> None:
    check = HttpCheck.model_validate({"type": "https", "path": "/health", "tls": {"verify": False}})
    assert probe(check, https_server.endpoint).ok


def test_plain_http_to_a_tls_port_fails_clearly(https_server: HttpServer) -> None:
    result = probe(http(), https_server.endpoint)
    assert not result.ok
    assert https_server.endpoint in result.reason


def test_lb_passes_while_a_backend_lives_and_fails_with_none(lb: object) -> None:
    from tests.probes.conftest import Lb, wait_for_result

    assert isinstance(lb, Lb)
    endpoint = lb.haproxy.endpoint
    assert wait_for_result(http(body_regex=r"^ok app\d"), endpoint, ok=True).ok
    lb.backends[0].set_health(503)
    assert wait_for_result(http(body_regex=r"^ok app1"), endpoint, ok=True, repeat=3).ok
    lb.backends[1].set_health(503)
    result = wait_for_result(http(), endpoint, ok=False)
    assert result.reason == f"HTTP 503 from {endpoint}"
    for backend in lb.backends:
        backend.set_health(200)
    assert wait_for_result(http(), endpoint, ok=True).ok


def test_a_missing_ca_file_fails_the_check_with_a_reason(
    https_server: HttpServer, tmp_path: Path
) -> None:
    check = HttpCheck.model_validate(
        {"type": "https", "tls": {"ca_file": str(tmp_path / "missing-ca.pem")}}
    )
    result = probe(check, https_server.endpoint)
    assert not result.ok
    assert result.reason == (
        f"cannot set up the https check: No such file or directory: {tmp_path / 'missing-ca.pem'}"
    )


def test_head_request(healthy_http: HttpServer) -> None:
    assert probe(http(method="HEAD"), healthy_http.endpoint).ok
    healthy_http.set_health(500)
    result = probe(http(method="HEAD"), healthy_http.endpoint)
    assert result.reason == f"HTTP 500 from {healthy_http.endpoint}"


def test_request_headers_are_sent(healthy_http: HttpServer) -> None:
    check = http(
        path="/header/X-Probe", headers={"X-Probe": "failover"}, body_regex=r"^X-Probe=failover$"
    )
    assert probe(check, healthy_http.endpoint).ok
    assert not probe(
        http(path="/header/X-Probe", body_regex=r"=failover"), healthy_http.endpoint
    ).ok


def test_a_catastrophic_body_regex_never_stalls_the_event_loop(healthy_http: HttpServer) -> None:
    """Issue 14, finding 12: `(a+)+$` against 27 a's and a '!' backtracks for seconds in `re`,
    on the event loop; the search now runs in a thread, without the GIL, for at most the
    check's timeout."""
    import asyncio
    import time

    from failover.probes import run_check
    from failover.probes.base import ProbeContext
    from failover.probes.runner import make_probe

    checks = [
        http(path="/host", host="a" * 27 + "!", body_regex=pattern, timeout_s=0.8)
        for pattern in (r"^host=(a+)+$", r"^host=(?:a|aa)+$", r"^host=(a|a?)+$")
    ]

    async def scenario() -> tuple[list[bool], float]:
        lags: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                lags.append(now - last)
                last = now

        task = asyncio.create_task(ticker())
        context = ProbeContext()
        try:
            results = [
                await run_check(make_probe(check, context), check, healthy_http.endpoint)
                for check in checks
            ]
        finally:
            done.set()
            await task
            await context.close()
        return [result.ok for result in results], max(lags)

    oks, worst_lag = asyncio.run(scenario())
    assert oks == [False, False, False]
    assert worst_lag < 0.3, worst_lag
