from __future__ import annotations

import pytest

from failover.config import ConfigError
from failover.sim.topology import load_topology, parse_topology
from tests.sim.conftest import REFERENCE, ROOT


def test_reference_model_is_what_the_issue_describes() -> None:
    topology = load_topology(REFERENCE)
    config = topology.config
    assert config.serving_sites == ["dc1", "dc2"] and "witness" in config.sites
    for site in config.serving_sites:
        services = config.sites[site].services
        assert sorted(s.kind for s in services.values()) == sorted(
            ["app", "mail", "db", "lb", "firewall"]
        )
        assert all(s.check.interval_s == 1 for s in services.values())
    assert len(config.instances) == 3
    assert topology.world.zookeeper.servers == {"dc1": 2, "dc2": 2, "witness": 1}
    assert load_topology(ROOT / "simulations" / "two-site.yaml").config.observer_quorum == 2


def test_every_error_is_reported_by_its_path() -> None:
    text = REFERENCE.read_text()
    text = text.replace("servers: {dc1: 2, dc2: 2, witness: 1}", "servers: {dc1: 2, moon: 1}")
    text = text.replace("dc1-dc2: 0.002", "dc1-mars: 0.002")
    text = text.replace("session_timeout_s: 4", "session_timeout_s: -4")
    with pytest.raises(ConfigError) as caught:
        parse_topology(text, "t.yaml")
    paths = [p.path for p in caught.value.problems]
    assert paths == ["config.cluster.zookeeper.session_timeout_s"]
    text = text.replace("session_timeout_s: -4", "session_timeout_s: 4")
    with pytest.raises(ConfigError) as caught:
        parse_topology(text, "t.yaml")
    paths = [p.path for p in caught.value.problems]
    assert "world.zookeeper.servers.moon" in paths
    assert "world.network.latency_s.dc1-mars" in paths
