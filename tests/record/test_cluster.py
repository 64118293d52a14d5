"""A real failover recorded by a real cluster (ZooKeeper, BIND, HTTP services, three
daemons on loopback), then replayed: faithfully with its own config, with `hold_down_s: 30`
(no switch), as a game-day playbook in the simulator (the same outcome), and plotted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.testing.servers.process import Process, free_port
from tests.operator.cluster import FAILOVER, Cluster, wait_for

pytestmark = pytest.mark.zookeeper


class RecordingCluster(Cluster):
    def document(self) -> dict[str, Any]:
        doc = super().document()
        doc["cluster"]["daemon"]["record_dir"] = str(self.workdir / "records")
        return doc


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Cluster]]:
    """dc1's HTTP service stops; web moves to dc2; dc1's comes back; the daemons stop."""
    workdir = Path(tmp_path_factory.mktemp("recording-cluster"))
    cluster = RecordingCluster(workdir)
    try:
        cluster.start()
    except BaseException:
        print(cluster.logs())
        cluster.stop()
        raise
    # a shadow with a 30 s hold-down follows the live cluster through the incident
    listen = f"127.0.0.1:{free_port()}"
    shadow = Process(
        "shadow",
        [
            FAILOVER,
            "shadow",
            "--config",
            str(candidate(workdir, cluster, hold_down_s=30)),
            "--listen",
            listen,
            "--json",
            "--name",
            "hold-down-30",
        ],
        log_path=workdir / "shadow.log",
    )
    try:
        wait_for(cluster.every_vote_up, 15.0, "every observer site votes up")
        shadow.start()
        wait_for(lambda: "failover_shadow_agree 1.0" in scrape(listen), 15.0, "the shadow agrees")
        time.sleep(2.0)  # some steady cycles before the incident
        cluster.http["dc1"].stop()
        cluster.wait_steady("dc2", 30.0)
        # the incident lasts until the shadow has seen it: under load its cycle can come
        # after dc1's return, and it would then report "recovered", not its hold-down
        wait_for(
            lambda: 'divergences_total{group="web",kind="active"} 1.0' in scrape(listen),
            15.0,
            "the shadow diverges",
        )
        cluster.http["dc1"].start()
        wait_for(lambda: cluster.healthy("dc1"), 15.0, "dc1 healthy again")
        time.sleep(2.0)
        (workdir / "shadow.metrics").write_text(scrape(listen))
        (workdir / "status.txt").write_text(
            subprocess.run(
                [FAILOVER, "status", "--config", str(cluster.config_path)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            ).stdout
        )
    except BaseException:
        print(cluster.logs(), shadow.log_tail(30))
        shadow.stop()
        cluster.stop()
        raise
    shadow.stop()
    for process in cluster.daemons.values():
        process.stop()  # a clean stop closes the recording
    yield workdir, cluster
    cluster.stop()
    shutil.rmtree(workdir / "zk", ignore_errors=True)


def scrape(listen: str) -> str:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as response:
        return str(response.read().decode())


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [FAILOVER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def records(workdir: Path) -> list[Path]:
    found = sorted((workdir / "records").glob("ops+*.jsonl.gz"))
    assert found, "no recording written"
    return found


def test_the_recorded_failover_replays_faithfully(incident: tuple[Path, Cluster]) -> None:
    workdir, _ = incident
    done = cli("replay", *records(workdir), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["faithful"] is True and doc["cluster"] == "ops" and doc["cycles"] > 10
    recorded = doc["recorded"]
    assert recorded["failovers"] == 1 and recorded["switches"] == 1
    assert recorded["each"][0]["from"] == "dc1" and recorded["each"][0]["to"] == "dc2"
    text = cli("replay", *records(workdir))
    assert "faithful: the recorded config reproduces every recorded decision" in text.stdout
    print(text.stdout)


def candidate(workdir: Path, cluster: Cluster, **policy: Any) -> Path:
    doc = cluster.document()
    doc["policy"].update(policy)
    path = workdir / "candidate.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_with_a_30_s_hold_down_nothing_would_have_switched(incident: tuple[Path, Cluster]) -> None:
    workdir, cluster = incident
    config = candidate(workdir, cluster, hold_down_s=30)
    done = cli("replay", *records(workdir), "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["recorded"]["switches"] == 1
    assert doc["candidate"]["switches"] == 0 and doc["candidate"]["failovers"] == 0
    first = doc["differences"][0]
    assert first["recorded"]["code"] == "failover" and first["recorded"]["active"] == "dc2"
    assert first["candidate"]["code"] == "hold_down" and first["candidate"]["active"] == "dc1"
    text = cli("replay", *records(workdir), "--config", config, "--report", workdir / "report")
    assert text.returncode == 0, text.stderr
    assert "  recorded   dc2   failover: dc1 app down by " in text.stdout
    assert "  candidate  dc1   hold_down: dc1 app down by " in text.stdout
    assert "candidate  switches 0, failovers 0" in text.stdout
    assert (workdir / "report" / "timeline.png").stat().st_size > 1000
    print(text.stdout)


def test_the_incident_as_a_playbook_has_the_same_outcome_in_the_simulator(
    incident: tuple[Path, Cluster],
) -> None:
    workdir, _ = incident
    book = workdir / "incident.yaml"
    done = cli("replay", *records(workdir), "--to-playbook", book)
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(book.read_text())
    fault = spec["method"][0]
    assert fault["fault"] == {"kind": "service_down", "site": "dc1", "service": "app"}
    assert 0 < fault["duration_s"] < 30
    assert "switches(web) == 1" in spec["expectations"]
    assert "active(web) == dc2" in spec["expectations"]
    run = cli("gameday", book)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED" in run.stdout


def test_a_shadow_with_a_30_s_hold_down_reported_the_divergence(
    incident: tuple[Path, Cluster],
) -> None:
    workdir, _ = incident
    metrics = (workdir / "shadow.metrics").read_text()
    assert 'failover_shadow_divergences_total{group="web",kind="active"} 1.0' in metrics
    assert "failover_shadow_agree 0.0" in metrics
    lines = [
        json.loads(line)
        for line in (workdir / "shadow.log").read_text().splitlines()
        if line.startswith("{")
    ]
    first = next(line for line in lines if line["kind"] == "active")
    assert first["group"] == "web"
    assert first["live"]["active"] == "dc2" and first["live"]["code"] == "failover"
    assert first["shadow"]["active"] == "dc1" and first["shadow"]["code"] == "hold_down", first


def test_status_shows_the_attached_shadow_and_how_far_it_diverges(
    incident: tuple[Path, Cluster],
) -> None:
    workdir, _ = incident
    status = (workdir / "status.txt").read_text()
    assert "shadow hold-down-30 attached: diverges now in web; 1 divergence(s)" in status, status
