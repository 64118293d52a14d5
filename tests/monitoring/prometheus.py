"""A real Prometheus for tests: docs/monitoring's config and rules, scraping every second, with
every `for:` cut to 1 s (FailoverFrozenLong keeps its hours) so that alerts fire in seconds.
It can run inside a lab network namespace; its HTTP API is then queried from there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from failover.testing.servers.process import Process, free_port, wait_until

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
PROMETHEUS = shutil.which("prometheus")
MISSING = "prometheus is missing: `make system` installs Debian's prometheus package"


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str], netns: str | None = None) -> None:
        assert PROMETHEUS is not None, MISSING
        workdir.mkdir(parents=True, exist_ok=True)
        rules = re.sub(r"for: (?!4h)\S+", "for: 1s", (MONITORING / "alerts.yml").read_text())
        (workdir / "alerts.yml").write_text(rules)
        config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["scrape_configs"][0]["static_configs"] = [{"targets": targets}]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.netns = netns
        self.address = f"127.0.0.1:{free_port()}"
        self.process = Process(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.address}",
            ],
            log_path=workdir / "prometheus.log",
            netns=netns,
        )

    def start(self) -> Prometheus:
        self.process.start()
        wait_until(lambda: self.get("/-/ready") is not None, 30.0, "prometheus ready")
        return self

    def stop(self) -> None:
        self.process.stop()

    def get(self, path: str, **query: str) -> Any:
        url = f"http://{self.address}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        if self.netns is None:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
        else:
            try:
                body = subprocess.run(
                    ["ip", "netns", "exec", self.netns, "curl", "-sSf", "-m", "5", url],
                    capture_output=True,
                    check=True,
                    timeout=10,
                ).stdout
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise OSError(f"GET {url} in {self.netns}: {exc}") from exc  # as urlopen would
        return json.loads(body) if path.startswith("/api/") else body

    def firing(self) -> dict[str, list[dict[str, str]]]:
        found: dict[str, list[dict[str, str]]] = {}
        for alert in self.get("/api/v1/alerts")["data"]["alerts"]:
            if alert["state"] == "firing":
                found.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return found

    def value(self, expression: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expression)["data"]["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        groups = self.get("/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def settle(self, targets: int) -> None:
        """Until every target is scraped, every rule evaluated cleanly and nothing fires
        (before the first scrapes nobody seems to lead, and the cut `for:` lets that fire)."""
        wait_until(
            lambda: len(self.value('up{job="failover"} == 1')) == targets,
            30.0,
            f"{targets} daemons scraped",
        )
        wait_until(
            lambda: len(self.value("failover_verdict == 1")) >= 2,
            30.0,
            "the daemons' verdicts scraped",
        )
        wait_until(
            lambda: all(r.get("lastEvaluation", "").startswith("20") for r in self.rules()),
            30.0,
            "every rule evaluated",
        )
        broken = [(r["name"], r["lastError"]) for r in self.rules() if r["health"] != "ok"]
        assert broken == []
        wait_until(lambda: self.firing() == {}, 30.0, "no alert firing while steady")
