"""BIND 9 for the lab: an authoritative primary that accepts TSIG-signed updates only, and a
secondary fed by NOTIFY and IXFR. Each server runs from its own fresh directory (a stale
journal would stop the zone from loading)."""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path

from failover.lab import netns as nets
from failover.lab.topology import NAME_SERVERS


@dataclass(frozen=True, slots=True)
class TsigKey:
    name: str
    algorithm: str  # hmac-sha256 | hmac-sha512
    secret: str  # base64


@dataclass(frozen=True, slots=True)
class Zone:
    name: str  # with the trailing dot
    ttl: int
    records: tuple[tuple[str, str], ...]  # (owner relative to the zone, address)
    keys: tuple[str, ...]  # TSIG key names allowed to update


def zone_file(zone: Zone) -> str:
    lines = [
        f"$ORIGIN {zone.name}",
        f"$TTL {zone.ttl}",
        f"@ IN SOA ns1.{zone.name} hostmaster.{zone.name} ( 1 60 10 3600 {zone.ttl} )",
        "@ IN NS ns1",
        "@ IN NS ns2",
        f"ns1 IN A {NAME_SERVERS['primary']}",
        f"ns2 IN A {NAME_SERVERS['secondary']}",
    ]
    for owner, address in zone.records:
        kind = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
        lines.append(f"{owner} IN {kind} {address}")
    return "\n".join(lines) + "\n"


def named_config(role: str, directory: Path, zones: list[Zone], keys: list[TsigKey]) -> str:
    own = NAME_SERVERS[role]
    primary, secondary = NAME_SERVERS["primary"], NAME_SERVERS["secondary"]
    key_blocks = "\n".join(
        f'key "{key.name}" {{ algorithm {key.algorithm}; secret "{key.secret}"; }};' for key in keys
    )
    zone_blocks = []
    for zone in zones:
        bare = zone.name.rstrip(".")
        if role == "primary":
            allowed = " ".join(f'key "{name}";' for name in zone.keys)
            zone_blocks.append(
                f'zone "{bare}" {{ type primary; file "{bare}.zone"; notify explicit; '
                f"also-notify {{ {secondary}; }}; allow-transfer {{ {secondary}; }}; "
                f"allow-update {{ {allowed} }}; }};"
            )
        else:
            zone_blocks.append(
                f'zone "{bare}" {{ type secondary; file "{bare}.zone"; '
                f"primaries {{ {primary}; }}; allow-notify {{ {primary}; }}; notify no; }};"
            )
    zones_text = "\n".join(zone_blocks)
    return f"""// failover lab: the {role} name server
options {{
  directory "{directory}";
  pid-file "{directory / "named.pid"}";
  listen-on port 53 {{ {own}; }};
  listen-on-v6 {{ none; }};
  query-source address {own};
  notify-source {own};
  transfer-source {own};
  recursion no;
  dnssec-validation no;
  notify-delay 0;
  notify-rate 1000;
  serial-query-rate 1000;
  max-ixfr-ratio unlimited;
  session-keyfile "{directory / "session.key"}";
  managed-keys-directory "{directory}";
}};
controls {{ }};
logging {{
  channel file_log {{ file "{directory / "named.log"}"; severity info; print-time yes; }};
  category default {{ file_log; }};
}};
{key_blocks}
{zones_text}
"""


def start_named(
    ns: str, role: str, directory: Path, zones: list[Zone], keys: list[TsigKey], fresh: bool
) -> int:
    """Write the files and start `named` (it forks once its config loads); its PID."""
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if role == "primary":
        for zone in zones:
            path = directory / f"{zone.name.rstrip('.')}.zone"
            if fresh or not path.exists():
                path.write_text(zone_file(zone))
    config = directory / "named.conf"
    config.write_text(named_config(role, directory, zones, keys))
    pid_file = directory / "named.pid"
    pid_file.unlink(missing_ok=True)
    nets.run(nets.in_netns(ns, ["named", "-n", "1", "-c", str(config)]))
    return nets.wait_pid_file(pid_file, f"named ({role}) in {ns}")
