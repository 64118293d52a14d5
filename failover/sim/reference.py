"""docs/playbooks.md, generated from the playbook models and the expression vocabulary, so
that the reference cannot drift from what `failover gameday` accepts
(`python -m failover.sim.reference > docs/playbooks.md`; a test keeps it current)."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from failover.sim import faults, playbook
from failover.sim.topology import CLIENTS, ISP, router_name

LOCATIONS = [
    ("SITE", "a site (`dc1`, `witness`, or `active`/`standby`): every link fault"),
    (CLIENTS, "where client traffic comes from (the lab's client namespace)"),
    (
        "INSTANCE",
        "a daemon (`dc1-a`): a `link_cut` from a site or another location; its ZooKeeper "
        "client notices a silent server by an unanswered ping (within 2/3 of the session "
        "timeout) and moves on",
    ),
    (
        "zk-SITE-N",
        "a ZooKeeper server: a `link_cut`; a follower cut from its leader drops its clients "
        "after tickTime x syncLimit; a leader without a majority is replaced after that plus "
        "`election_s` (a killed one after `election_s`); the highest id leads",
    ),
    (
        router_name("SITE"),
        "a serving site's edge router: a `link_cut` from `isp` silences its BGP session (the "
        "isp drops its routes after `bgp_hold_s`, learns them again after the propagation "
        "delay once healed) and the clients' way into the site; from a daemon: that daemon's "
        "agent and stop hook cannot change its routes",
    ),
    (ISP, f"the upstream router, on the `{CLIENTS}` side: a `link_cut` only with a router"),
]

FORMS = [
    (
        "METRIC[(ARGS)] OP VALUE",
        "compare a metric now (at the end of the run): `switches <= 1`, "
        "`availability >= 99.5 %`, `announced(web, dc1) == primary`",
    ),
    (
        "... within N s",
        "it first holds no later than N s after the start of the method (or `from:` a step)",
    ),
    ("... not before N s", "it first holds no sooner than N s after that"),
    (
        "COUNT OP N between A s and B s",
        "count switches, alerts or decisions in a window "
        "(offsets from the start, or `from:` a step)",
    ),
    ("METRIC stays VALUE", "it never had any other value (active, traffic, leader)"),
    ("alert CODE / no alert CODE", "the leader raised (or never raised) that alert"),
    (
        "refused(switchover to SITE) [naming CHECK, ...]",
        "such a command was refused, and its failed pre-checks include every check named",
    ),
    ("no_dual_primary / no_violations", "the checker's invariants held"),
]


def markdown() -> str:
    lines = [
        "# Playbook reference",
        "",
        "Generated from `failover/sim/playbook.py` and `failover/sim/faults.py` by "
        "`python -m failover.sim.reference`; a test keeps it current.",
        "",
        "## Expressions",
        "",
        "| form | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| `{form}` | {meaning} |" for form, meaning in FORMS]
    lines += [
        "",
        "`from:` names a method step (its start) or `STEP end` (when its fault "
        "ended). A playbook's `leader: INSTANCE` chooses who leads at the start; a "
        "daemon fault's `instance` may be `leader` or `agent:SITE`.",
        "",
        "## Metrics",
        "",
        "| metric | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in playbook.METRICS.items()]
    lines += [
        "",
        "## Locations",
        "",
        "A link fault's `between` names two of these; a cut between two sites cuts every "
        "location in them from each other.",
        "",
        "| location | what a cut does |",
        "| --- | --- |",
    ]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in LOCATIONS]
    lines += ["", "## Faults and operator actions", ""]
    for model in typing.get_args(typing.get_args(faults.FaultSpec)[0]):
        lines += _model(model)
    return "\n".join(lines) + "\n"


def _model(model: type[BaseModel]) -> list[str]:
    kinds = typing.get_args(model.model_fields["kind"].annotation)
    out = [
        f"### {', '.join(f'`{k}`' for k in kinds)}",
        "",
        "| field | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in model.model_fields.items():
        if name == "kind":
            continue
        kind = (
            str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
        )
        default = "required" if field.is_required() else f"`{field.default!r}`"
        out.append(f"| `{name}` | `{kind}` | {default} | {field.description or ''} |")
    return out + [""]


if __name__ == "__main__":
    print(markdown(), end="")
