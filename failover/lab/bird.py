"""BIRD 2 for the lab: the isp's and each edge router's configuration, start and stop.

An edge router learns the service prefix from a dedicated kernel table (the agent's route,
`failover.steer.BirdSteerer`) and exports it to the isp: clean while the route's metric is below
the group's held metric (primary), with one AS-path prepend below the backup metric (held),
with three at or above it (backup), and not at all without the route (withdrawn). The isp
imports every site's announcement and installs its best route into its kernel, so packets from
the client follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from failover.lab import netns as nets
from failover.lab.topology import ISP_AS, ISP_ROUTER_ID, UPLINKS

# AS-path prepends per announcement: the isp prefers the shortest path, so a primary (none)
# wins over a held former primary (one), which wins over a backup (three).
PREPENDS = {"primary": 0, "held": 1, "backup": 3}
HOLD_S = 3  # a silent BGP neighbour's routes go after this (the simulator's `bgp_hold_s`)
TIMERS = (
    f"hold time {HOLD_S}; keepalive time 1; connect delay time 1; connect retry time 2; "
    "error wait time 1, 5;"
)


@dataclass(frozen=True, slots=True)
class Export:
    """One BGP group's prefix as a site exports it: from which kernel table, at what metric."""

    prefix: str
    table: int
    metric_held: int
    metric_backup: int


def isp_config(run_dir: Path, sites: list[str]) -> str:
    peers = "\n".join(
        f"protocol bgp {site} from sites {{ neighbor {UPLINKS[site].ip} as {UPLINKS[site].asn}; }}"
        for site in sites
    )
    return f"""# failover lab: the upstream router
log "{run_dir / "bird.log"}" all;
router id {ISP_ROUTER_ID};
protocol device {{ scan time 10; }}
protocol kernel {{
  ipv4 {{ import none; export where source = RTS_BGP; }};
}}
template bgp sites {{
  local as {ISP_AS};
  {TIMERS}
  ipv4 {{ import all; export none; }};
}}
{peers}
"""


def site_config(run_dir: Path, site: str, exports: list[Export], protocol: str) -> str:
    uplink = UPLINKS[site]
    tables = sorted({export.table for export in exports})
    kernels = "\n".join(
        f"""protocol kernel steer{table} {{
  kernel table {table};
  learn;
  scan time 10;
  ipv4 {{ import where net ~ [ {", ".join(e.prefix for e in exports if e.table == table)} ];
          export none; }};
}}"""
        for table in tables
    )

    def prepend(kind: str) -> str:
        return " ".join(f"bgp_path.prepend({uplink.asn});" for _ in range(PREPENDS[kind]))

    rules = "\n".join(
        f'  if net = {e.prefix} && proto = "steer{e.table}" then {{\n'
        f"    if krt_metric >= {e.metric_backup} then {{ {prepend('backup')} }}\n"
        f"    else if krt_metric >= {e.metric_held} then {{ {prepend('held')} }}\n"
        f"    accept;\n  }}"
        for e in exports
    )
    return f"""# failover lab: the edge router of {site}
log "{run_dir / "bird.log"}" all;
router id {uplink.ip};
protocol device {{ scan time 10; }}
{kernels}
filter to_isp {{
{rules}
  reject;
}}
protocol bgp {protocol} {{
  local as {uplink.asn};
  neighbor {uplink.isp_ip} as {ISP_AS};
  {TIMERS}
  ipv4 {{ import none; export filter to_isp; }};
}}
"""


def start_bird(ns: str, run_dir: Path, config_text: str, socket_path: Path) -> int:
    """Write the config and start BIRD (it daemonizes once the config is valid); its PID."""
    run_dir.mkdir(parents=True, exist_ok=True)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    config = run_dir / "bird.conf"
    config.write_text(config_text)
    pid_file = run_dir / "bird.pid"
    pid_file.unlink(missing_ok=True)
    nets.run(
        nets.in_netns(ns, ["bird", "-c", str(config), "-s", str(socket_path), "-P", str(pid_file)])
    )
    return nets.wait_pid_file(pid_file, f"BIRD in {ns}")
