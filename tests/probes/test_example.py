"""`failover probe examples/two-dc.yaml` against real servers at the example's addresses.

The addresses exist only on a bridge inside a namespace this fixture makes, and the probe
runs inside it too: every packet stays in that namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from failover.lab import netns as nets
from failover.testing.servers.haproxy import HaproxyServer
from failover.testing.servers.http import HttpServer
from failover.testing.servers.nginx import NginxServer
from failover.testing.servers.postgres import PostgresServer
from failover.testing.servers.smtp import SmtpServer

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-dc.yaml"
NETNS = "fo-t-example-sites"


@dataclass
class Sites:
    apps: dict[str, HttpServer] = field(default_factory=dict)
    stoppable: list[HttpServer | HaproxyServer | NginxServer | SmtpServer | PostgresServer] = field(
        default_factory=list
    )


@pytest.fixture(scope="module")
def sites(workdir: Path) -> Iterator[Sites]:
    """dc1 and dc2 as the example describes them: app, lb, db, mail, firewall, edge."""
    nets.delete_namespace(NETNS)
    nets.add_namespace(NETNS)
    made = Sites()
    try:
        commands = ["link add svc type bridge"]
        for n in (1, 2):
            commands += [f"addr add 10.{n}.0.{host}/24 dev svc" for host in (1, 10, 11, 12, 13, 14)]
        commands.append("link set svc up")
        nets.batch(NETNS, commands)
        root = workdir / "example"
        primary: PostgresServer | None = None
        for n, site in ((1, "dc1"), (2, "dc2")):
            net = f"10.{n}.0"
            app = HttpServer(root / site / "app", f"{net}.10", 8080, netns=NETNS, name=site)
            made.stoppable.append(app.start())
            made.apps[site] = app
            made.stoppable.append(
                HaproxyServer(
                    root / site / "lb", [app.endpoint], f"{net}.11", 80, netns=NETNS, inter_ms=100
                ).start()
            )
            db = PostgresServer(
                root / site / "db",
                f"{net}.12",
                5432,
                netns=NETNS,
                primary=primary,
                name=f"{site}-db",
            )
            made.stoppable.append(db.start())
            primary = primary or db
            made.stoppable.append(
                SmtpServer(root / site / "mail", f"{net}.13", 25, netns=NETNS).start()
            )
            made.stoppable.append(
                NginxServer(root / site / "fw", f"{net}.14", 443, netns=NETNS).start()
            )
        yield made
    finally:
        for server in reversed(made.stoppable):
            server.stop()
        nets.delete_namespace(NETNS)


def probe_example() -> tuple[int, list[dict[str, object]]]:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            NETNS,
            sys.executable,
            "-c",
            "from failover.cli import main; main()",
            "probe",
            "--json",
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)["results"]


def test_every_check_of_the_example_passes(sites: Sites) -> None:
    code, rows = probe_example()
    assert [(r["key"], r["ok"]) for r in rows if not r["ok"]] == []
    assert code == 0
    reasons = {r["key"]: r["reason"] for r in rows}
    assert reasons["dc1/db/10.1.0.12:5432"] == "primary at 10.1.0.12:5432"
    assert str(reasons["dc2/db/10.2.0.12:5432"]).startswith("standby at 10.2.0.12:5432")
    assert reasons["dc1/lb/10.1.0.11:80"] == "HTTP 200 from 10.1.0.11:80"
    assert str(reasons["dc2/mail/10.2.0.13:25"]).startswith("SMTP banner 220, EHLO ok")


def test_a_failing_app_fails_its_row_and_the_exit_code(sites: Sites) -> None:
    sites.apps["dc2"].set_health(503)
    try:
        code, rows = probe_example()
    finally:
        sites.apps["dc2"].set_health(200)
    assert code == 1
    failed = {r["key"]: r["reason"] for r in rows if not r["ok"]}
    assert failed["dc2/app/10.2.0.10:8080"] == "HTTP 503 from 10.2.0.10:8080"
    assert set(failed) <= {"dc2/app/10.2.0.10:8080", "dc2/lb/10.2.0.11:80"}
