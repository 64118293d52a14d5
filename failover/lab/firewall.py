"""Cutting links in the lab with nftables: silent drops, as a broken network behaves.

A cut between two locations other than the isp drops what the isp forwards between them
(both directions). A cut between a location and the isp drops everything on that location's
uplink, BGP included: the location is isolated. A cut between a site's edge router
(`router-SITE`) and the isp drops the router's BGP session and the clients' way into the site,
in the isp; the site's other traffic (to the other sites, the name servers) goes on. Every rule
carries the comment `cut A B`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from failover.lab import netns as nets
from failover.lab.topology import LOCATIONS, ROUTER_SITES, netns

TABLE = "fo_lab"
_RULE = re.compile(r'comment "cut (\S+) (\S+)" # handle (\d+)')


ROUTERS = tuple(f"router-{site}" for site in ROUTER_SITES)


def _pair(a: str, b: str) -> tuple[str, str]:
    for location in (a, b):
        if location not in LOCATIONS + ROUTERS:
            raise nets.LabError(
                f"unknown lab location {location!r} (one of {', '.join(LOCATIONS + ROUTERS)})"
            )
    if a == b:
        raise nets.LabError(f"cannot cut {a} from itself")
    first, second = sorted((a, b))
    if first == "isp":
        first, second = second, first  # the isp always second
    for router, other in ((first, second), (second, first)):
        if router in ROUTERS and other != "isp":
            raise nets.LabError(f"{router} can only be cut from the isp, not from {other}")
    return first, second


def _namespace(first: str, second: str) -> str:
    """Where a cut's rules are: the isolated location's own namespace, else the isp's."""
    return netns(first) if second == "isp" and first in LOCATIONS else netns("isp")


def _ensure_table(ns: str) -> None:
    nets.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"],
        input_text=f"""
table inet {TABLE} {{
  chain forward {{ type filter hook forward priority 0; policy accept; }}
  chain input {{ type filter hook input priority 0; policy accept; }}
  chain output {{ type filter hook output priority 0; policy accept; }}
}}
""",
    )


def cut(a: str, b: str, served: Sequence[str] = ()) -> None:
    """Cut two locations apart. A router's cut from the isp drops what the clients exchange
    with the `served` addresses and prefixes (the site's services; every address if none):
    the operator, who also works from the client namespace, keeps its way to the site's
    ZooKeeper servers and daemons."""
    first, second = _pair(a, b)
    if (first, second) in cuts():
        return
    comment = f'comment "cut {first} {second}"'
    ns = _namespace(first, second)
    if first in ROUTERS:
        site = first.removeprefix("router-")
        to = f"ip daddr {{ {', '.join(served)} }} " if served else ""
        back = f"ip saddr {{ {', '.join(served)} }} " if served else ""
        rules = [
            f'add rule inet {TABLE} input iifname "{site}" drop {comment}',
            f'add rule inet {TABLE} output oifname "{site}" drop {comment}',
            f'add rule inet {TABLE} forward iifname "client" oifname "{site}" {to}drop {comment}',
            f'add rule inet {TABLE} forward iifname "{site}" oifname "client" {back}drop {comment}',
        ]
    elif second == "isp":
        rules = [
            f'add rule inet {TABLE} input iifname "isp" drop {comment}',
            f'add rule inet {TABLE} output oifname "isp" drop {comment}',
        ]
    else:
        rules = [
            f'add rule inet {TABLE} forward iifname "{one}" oifname "{other}" drop {comment}'
            for one, other in ((first, second), (second, first))
        ]
    _ensure_table(ns)
    nets.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input_text="\n".join(rules) + "\n")


def heal(a: str, b: str) -> None:
    first, second = _pair(a, b)
    ns = _namespace(first, second)
    for rule_first, rule_second, chain, handle in _rules(ns):
        if (rule_first, rule_second) == (first, second):
            nets.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "nft",
                    "delete",
                    "rule",
                    "inet",
                    TABLE,
                    chain,
                    "handle",
                    handle,
                ]
            )


def heal_all() -> None:
    for pair in cuts():
        heal(*pair)


def cuts() -> list[tuple[str, str]]:
    """Every cut in effect, as (location, other) with the isp always second."""
    found: set[tuple[str, str]] = set()
    for location in LOCATIONS:
        for first, second, _chain, _handle in _rules(netns(location)):
            found.add((first, second))
    return sorted(found)


def _rules(ns: str) -> list[tuple[str, str, str, str]]:
    done = nets.run(
        ["ip", "netns", "exec", ns, "nft", "-a", "list", "table", "inet", TABLE], check=False
    )
    if done.returncode != 0:
        return []
    rules, chain = [], ""
    for line in done.stdout.splitlines():
        words = line.split()
        if words[:1] == ["chain"]:
            chain = words[1]
        match = _RULE.search(line)
        if match:
            rules.append((match.group(1), match.group(2), chain, match.group(3)))
    return rules
