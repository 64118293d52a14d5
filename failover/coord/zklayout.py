"""Where the ZooKeeper coordinator keeps things, who may touch them, and how they are encoded.

Layout under `<chroot>/<cluster>`:

    members/<instance>            ephemeral Member
    leader/<instance>@<session>#<seq>  ephemeral-sequential election contenders (lowest leads)
    term                          the latest leadership term (an integer; only grows)
    observations/<instance>       ephemeral list of Observation
    state/<group>                 desired GroupState (leader only, fenced)
    applied/<group>/<site>        Applied, by that site's agent
    commands/cmd-<seq>            Command (operators create; immutable)
    results/cmd-<seq>             CommandResult (leader only, fenced, created once)
    audit                         the chain's head {"seq", "hash"}
    audit/entry-<seq>             AuditEntry (leader only, fenced, hash-chained)
    once/<signature>              a used API request's signature {"until"} (daemons; expires)
    refusals/entry-<seq>          a summary of refused API requests (daemons; own retention)

ACLs (digest): the daemon identity may do everything; the operator identity may read
everything and create children of `commands`; nobody else has any right.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kazoo.security import ACL, Permissions, make_acl, make_digest_acl_credential

from failover.coord.base import AuditEntry, CommandResult, CoordinatorError, Member
from failover.core.codec import decode, encode
from failover.core.model import Observation
from failover.secrets import register

VERDICTS = ("up", "down", "unknown")

DIRS = (
    "members",
    "leader",
    "observations",
    "state",
    "applied",
    "commands",
    "results",
    "audit",
    "once",
    "refusals",
    "shadows",
)
OPERATOR_DIRS = ("commands", "shadows")  # operators may create children here
SEQ_DIGITS = 10


@dataclass(frozen=True)
class Identity:
    """A digest identity: user and password (the password never leaves this process)."""

    user: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return ("digest", f"{self.user}:{self.password}")

    @property
    def acl_id(self) -> str:
        return str(make_digest_acl_credential(self.user, self.password))


def read_identity(path: str | Path, what: str) -> Identity:
    """Read a `user:password` file; a clear CoordinatorError names the file when it is bad."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CoordinatorError(f"{what} credentials {path}: cannot read: {exc}") from None
    user, sep, password = text.partition(":")
    if not sep or not user or not password or "\n" in text:
        raise CoordinatorError(f"{what} credentials {path}: expected one line `user:password`")
    identity = Identity(user, password)
    register(text, identity.acl_id)  # the digest too: it can be brute-forced offline
    return identity


class Acls:
    """The ACL lists for each kind of node (open when no daemon identity is configured)."""

    def __init__(self, daemon: Identity | None, operator: Identity | None) -> None:
        self.enabled = daemon is not None
        self._daemon = [make_acl("digest", daemon.acl_id, all=True)] if daemon else []
        self._operator_read = (
            [make_acl("digest", operator.acl_id, read=True)] if operator and daemon else []
        )
        self._operator_all = (
            [make_acl("digest", operator.acl_id, all=True)] if operator and daemon else []
        )
        self._operator_submit = (
            [make_acl("digest", operator.acl_id, read=True, create=True)]
            if operator and daemon
            else []
        )

    @property
    def node(self) -> list[ACL]:
        """Everything but `commands/`: daemon all, operator read."""
        if not self.enabled:
            return [ACL(Permissions.ALL, _anyone())]
        return self._daemon + self._operator_read

    @property
    def commands_dir(self) -> list[ACL]:
        """`commands/` and `shadows/`: daemon all, operator read and create children."""
        if not self.enabled:
            return self.node
        return self._daemon + self._operator_submit

    @property
    def shadow_node(self) -> list[ACL]:
        """A shadow's own (ephemeral) node: its operator may update it."""
        if not self.enabled:
            return self.node
        return self._daemon + self._operator_all


def _anyone() -> Any:
    from kazoo.security import ANYONE_ID_UNSAFE

    return ANYONE_ID_UNSAFE


class Layout:
    """Paths under `<chroot>/<cluster>`."""

    def __init__(self, chroot: str, cluster: str) -> None:
        root = chroot.rstrip("/")
        self.base = f"{root}/{cluster}"

    def ancestors(self) -> list[str]:
        """Every path from the top down to the base, inclusive."""
        parts = [part for part in self.base.split("/") if part]
        return ["/" + "/".join(parts[: index + 1]) for index in range(len(parts))]

    def dir(self, name: str) -> str:
        return f"{self.base}/{name}"

    @property
    def term(self) -> str:
        return f"{self.base}/term"

    def member(self, instance: str) -> str:
        _name("instance", instance)
        return f"{self.base}/members/{instance}"

    def contender_prefix(self, instance: str, session_id: int) -> str:
        return f"{self.base}/leader/{instance}@{session_id:x}#"

    def observation(self, instance: str) -> str:
        _name("instance", instance)
        return f"{self.base}/observations/{instance}"

    def state(self, group: str) -> str:
        _name("group", group)
        return f"{self.base}/state/{group}"

    def applied_dir(self, group: str) -> str:
        _name("group", group)
        return f"{self.base}/applied/{group}"

    def applied(self, group: str, site: str) -> str:
        _name("group", group)
        _name("site", site)
        return f"{self.base}/applied/{group}/{site}"

    def command(self, command_id: str) -> str:
        _name("command id", command_id)
        return f"{self.base}/commands/{command_id}"

    def result(self, command_id: str) -> str:
        _name("command id", command_id)
        return f"{self.base}/results/{command_id}"

    def shadow(self, name: str) -> str:
        _name("shadow", name)
        return f"{self.base}/shadows/{name}"

    def once(self, once_id: str) -> str:
        return f"{self.base}/once/{once_id}"

    @property
    def audit(self) -> str:
        return f"{self.base}/audit"

    def audit_entry(self, seq: int) -> str:
        return f"{self.base}/audit/entry-{seq:0{SEQ_DIGITS}d}"


def _name(kind: str, value: str) -> None:
    """Refuse a name that ZooKeeper would refuse (or read as another node) as a path element."""
    if (
        not value
        or value in (".", "..")
        or "/" in value
        or any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in value)
    ):
        raise CoordinatorError(f"{kind} {value!r} cannot name a ZooKeeper node")


def parse_contender(name: str) -> tuple[int, str, int]:
    """`<instance>@<session hex>#<seq>` -> (seq, instance, session id)."""
    head, _, seq = name.rpartition("#")
    instance, _, session = head.rpartition("@")
    return int(seq), instance, int(session, 16)


# --- encoding ------------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def encode_member(member: Member) -> bytes:
    return encode(member)


def decode_member(data: bytes) -> Member:
    raw = json.loads(data)
    raw["roles"] = tuple(raw.get("roles", ()))
    fields = ("instance", "site", "version", "roles", "started_at")
    return Member(**{key: raw[key] for key in fields})


def encode_observations(observations: list[Observation], compact: bool = False) -> bytes:
    """One instance's verdicts, as a list of whole observations.

    `compact`: what they share (instance, site, the heartbeat stamp `at`) once, then per target
    `[target, verdict, since, reason]`: half the size (1,000 checks: ~86 kB, not ~174 kB).
    Daemons read both forms, but daemons before this one read only the list: so daemons write
    the list until every daemon of a cluster reads the compact form (a two-step upgrade)."""
    if not observations or not compact:
        return dumps([_observation_dict(item) for item in observations])
    first = observations[0]
    shared = (first.instance, first.site, first.at)
    if any((o.instance, o.site, o.at) != shared for o in observations):
        return dumps([_observation_dict(item) for item in observations])  # not one heartbeat
    return dumps(
        {
            "instance": first.instance,
            "site": first.site,
            "at": first.at,
            "items": [[o.target, o.verdict, o.since, o.reason] for o in observations],
        }
    )


def _observation_dict(item: Observation) -> dict[str, Any]:
    """`to_dict(item)`, without `dataclasses.asdict`'s deep copy (1,000 a publish)."""
    return {
        "instance": item.instance,
        "site": item.site,
        "target": item.target,
        "verdict": item.verdict,
        "since": item.since,
        "at": item.at,
        "reason": item.reason,
    }


def decode_observations(data: bytes) -> list[Observation]:
    """Either form `encode_observations` writes (a list is also what older daemons wrote)."""
    raw = json.loads(data)
    if isinstance(raw, list):
        return [
            Observation(
                item["instance"],
                item["site"],
                item["target"],
                item["verdict"],
                item["since"],
                item["at"],
                item.get("reason", ""),
            )
            for item in raw
        ]
    if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
        raise ValueError("observations: neither a list nor {instance, site, at, items}")
    instance, site, at = str(raw["instance"]), str(raw["site"]), float(raw["at"])
    out = []
    for item in raw["items"]:
        if not isinstance(item, list) or len(item) != 4:
            raise ValueError(
                f"observations: an item is not [target, verdict, since, reason]: {str(item)[:80]}"
            )
        target, verdict, since, reason = item
        if verdict not in VERDICTS:
            raise ValueError(f"observations: unknown verdict {str(verdict)[:20]!r}")
        out.append(Observation(instance, site, str(target), verdict, float(since), at, str(reason)))
    return out


def encode_result(result: CommandResult) -> bytes:
    return encode(result)


def decode_result(data: bytes) -> CommandResult:
    return decode(CommandResult, data)


def encode_entry(entry: AuditEntry) -> bytes:
    return encode(entry)


def decode_entry(data: bytes) -> AuditEntry:
    return decode(AuditEntry, data)
