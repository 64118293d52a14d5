"""A site whose wall clock is 30 s behind changes no decision (real daemons, real ZooKeeper).

dc2's daemon stamps its observations 30 s in the past (`--clock-offset-s`, testing only), as a
site whose NTP failed would; freshness lives 3 s. With the witness's daemon gone, dc1's and
dc2's observers are the only two observer sites and the quorum is two: a leader that judged
age by the observers' clocks would drop every vote of dc2 and never fail over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator.cluster import Cluster, start_cluster, wait_for

pytestmark = pytest.mark.zookeeper


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(Path(tmp_path_factory.mktemp("skew")), clock_offsets={"b": -30.0})
    yield running
    running.stop()


def test_a_site_30_s_behind_still_votes_and_its_skew_is_shown(skewed: Cluster) -> None:
    wait_for(
        lambda: {"a", "b", "w"} <= set(skewed.status("a")["clocks"]),
        15.0,
        "every observer published",
    )
    clocks = skewed.status("a")["clocks"]
    assert clocks["b"]["off"] and -31.5 < clocks["b"]["offset_s"] < -28.5, clocks
    assert not clocks["a"]["off"]
    skewed.daemons["w"].stop()  # now dc2's votes are needed for any quorum
    skewed.http["dc1"].stop()
    try:
        wait_for(lambda: skewed.steady_on("dc2"), 30.0, "web failed over to dc2")
    finally:
        skewed.http["dc1"].start()
    audit = [e.payload.get("decision", {}) for e in skewed.operator_audit()]
    failover = [d for d in audit if d.get("code") == "failover"]
    assert failover and "2/2 observer sites" in failover[-1]["sentence"], failover
