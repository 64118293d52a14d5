"""A seeded discrete-event simulation of the whole situation, running the daemon's own leader
and agent (`failover.daemon.roles.Cycle`) against a simulated ZooKeeper, routers and name servers.

load_topology(path) -> Topology                 simulations/*.yaml: a Config + the world
World(topology, seed, engine_factory, leader)   the world; `run_until(t)`, `trace()`
load_playbook(path) -> Playbook                 playbooks/*.yaml
run_playbook(playbook, seed) -> Outcome         a verdict per expectation, a timeline
load_campaign(path) -> Campaign                 simulations/chaos.yaml
run_campaign(campaign, runs, seed, jobs) -> list[RunResult]; summarize(...) -> dict
"""

from __future__ import annotations

from failover.sim.campaign import Campaign, RunResult, load_campaign, run_campaign, summarize
from failover.sim.playbook import Playbook, load_playbook
from failover.sim.run import Outcome, run_playbook
from failover.sim.topology import Topology, load_topology
from failover.sim.world import World

__all__ = [
    "Campaign",
    "Outcome",
    "Playbook",
    "RunResult",
    "Topology",
    "World",
    "load_campaign",
    "load_playbook",
    "load_topology",
    "run_campaign",
    "run_playbook",
    "summarize",
]
