"""Cutting links in the lab with nftables: silent drops, as a broken network behaves.

A cut between two locations other than the isp drops what the isp forwards between them
(both directions). A cut between a location and the isp drops everything on that location's
uplink, BGP included: the location is isolated. Every rule carries the comment `cut A B`.
"""

from __future__ import annotations

import re

from failover.lab import netns as nets
from failover.lab.topology import LOCATIONS, netns

TABLE = "fo_lab"
_RULE = re.compile(r'comment "cut (\S+) (\S+)" # handle (\d+)')


def _pair(a: str, b: str) -> tuple[str, str]:
    for location in (a, b):
        if location not in LOCATIONS:
            raise nets.LabError(
                f"unknown lab location {location!r} (one of {', '.join(LOCATIONS)})"
            )
    if a == b:
        raise nets.LabError(f"cannot cut {a} from itself")
    first, second = sorted((a, b))
    return (second, first) if first == "isp" else (first, second)  # the isp always second


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


def cut(a: str, b: str) -> None:
    first, second = _pair(a, b)
    if (first, second) in cuts():
        return
    comment = f'comment "cut {first} {second}"'
    if second == "isp":
        ns = netns(first)
        rules = [
            f'add rule inet {TABLE} input iifname "isp" drop {comment}',
            f'add rule inet {TABLE} output oifname "isp" drop {comment}',
        ]
    else:
        ns = netns("isp")
        rules = [
            f'add rule inet {TABLE} forward iifname "{one}" oifname "{other}" drop {comment}'
            for one, other in ((first, second), (second, first))
        ]
    _ensure_table(ns)
    nets.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input_text="\n".join(rules) + "\n")


def heal(a: str, b: str) -> None:
    first, second = _pair(a, b)
    ns = netns(first if second == "isp" else "isp")
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
