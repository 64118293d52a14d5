"""Where the ZooKeeper coordinator keeps things, who may touch them, and how they are encoded.

Layout under `<chroot>/<cluster>`:

    members/<instance>            ephemeral Member
    leader/<instance>@<session>#<seq>  ephemeral-sequential election contenders (lowest leads)
    term                          the latest leadership term (an integer; only grows)
    observations/<instance>       ephemeral list of Observation
    state/<group>                 desired GroupState (leader only, fenced)
    applied/<group>/<site>        Applied, by that site's agent
    commands/cmd-<seq>            Command queued by a daemon (its API; immutable)
    requests/<operator>/cmd-<seq> Command queued by that operator (id `<operator>.cmd-<seq>`)
    results/<command id>          CommandResult (leader only, fenced, created once)
    audit                         the chain's head {"seq", "hash"}
    audit/entry-<seq>             AuditEntry (leader only, fenced, hash-chained)
    once/<signature>              a used API request's signature {"until"} (daemons; expires)
    refusals/entry-<seq>          a summary of refused API requests (daemons; own retention)

ACLs (digest): the daemon identity may do everything; every operator identity (each of
`operators`, and the shared `operator_auth` if set) may read everything and create children
of its own `requests/<operator>` folder (and of `shadows`); nobody else has any right. A
folder's name is the identity that may create in it, so the leader knows who queued a
command: ZooKeeper itself records no creator, but only `<operator>` can create there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kazoo.security import ACL, Permissions, make_acl, make_digest_acl_credential

from failover.coord.base import AuditEntry, CommandResult, CoordinatorError, Member
from failover.core.codec import decode, encode
from failover.core.model import Observation
from failover.secrets import register

if TYPE_CHECKING:
    from failover.config.model import Config

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
    "requests",
)
OPERATOR_DIRS = ("shadows",)  # every operator may create children here
LEGACY_OPERATOR_DIRS = ("commands", "shadows")  # where the shared identity could, before
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


def operator_ids(config: Config) -> dict[str, str]:
    """The digest acl id of each operator's own identity, by name (`operators`)."""
    found: dict[str, str] = {}
    for name, identity in config.cluster.zookeeper.operators.items():
        if identity.digest is not None:
            found[name] = identity.digest
            register(identity.digest)
        else:
            assert identity.credentials_file is not None  # one of the two (the config's rule)
            read = read_identity(identity.credentials_file, f"operator {name}")
            if read.user != name:
                raise CoordinatorError(
                    f"operator {name} credentials {identity.credentials_file}: "
                    f"names user {read.user!r}, not {name!r}"
                )
            found[name] = read.acl_id
    return found


class Acls:
    """The ACL lists for each kind of node (open when no daemon identity is configured).

    `operator` is the shared operator identity (if any); `operators` the acl ids of the
    operators' own identities by name; `own` the identity this client authenticates as."""

    def __init__(
        self,
        daemon: Identity | None,
        operator: Identity | None,
        operators: Mapping[str, str] | None = None,
        own: Identity | None = None,
    ) -> None:
        self.enabled = daemon is not None
        self.daemon_id = daemon.acl_id if daemon else None
        self.requesters: dict[str, str] = dict(operators or {})
        if operator is not None:
            self.requesters.setdefault(operator.user, operator.acl_id)
        self.legacy_id = operator.acl_id if operator else None
        self._daemon = [make_acl("digest", daemon.acl_id, all=True)] if daemon else []
        self._readers = [make_acl("digest", i, read=True) for i in sorted(self._ids())]
        self._submitters = [
            make_acl("digest", i, read=True, create=True) for i in sorted(self._ids())
        ]
        self._own_all = [make_acl("digest", own.acl_id, all=True)] if own and daemon else []

    def _ids(self) -> set[str]:
        return set(self.requesters.values()) if self.enabled else set()

    @property
    def node(self) -> list[ACL]:
        """Everything but the folders operators create in: daemon all, operators read."""
        if not self.enabled:
            return [ACL(Permissions.ALL, _anyone())]
        return self._daemon + self._readers

    @property
    def commands_dir(self) -> list[ACL]:
        """`shadows/`: daemon all, operators read and create children."""
        if not self.enabled:
            return self.node
        return self._daemon + self._submitters

    def request_dir(self, name: str) -> list[ACL]:
        """`requests/<name>`: daemon all, that operator read and create, the others read."""
        if not self.enabled:
            return self.node
        mine = self.requesters[name]
        return self._daemon + [
            make_acl("digest", i, read=True, create=i == mine) for i in sorted(self._ids())
        ]

    @property
    def shadow_node(self) -> list[ACL]:
        """A shadow's own (ephemeral) node: the operator that announced it may update it."""
        if not self.enabled:
            return self.node
        return self._daemon + self._own_all

    def repairable(self, found: list[ACL], expected: list[ACL], legacy: bool) -> bool:
        """Whether a node whose ACL differs from `expected` is still ours, and may be set to
        it: every entry it has is one we would give, or read-only (an operator removed, or
        added since), or, on a `legacy` folder, the shared identity's old create right.
        Anyone else's write, create or admin right means someone else may have made it."""
        wanted = {(int(a.perms), str(a.id.scheme), str(a.id.id)) for a in expected}
        for acl in found:
            perms, scheme, ident = int(acl.perms), str(acl.id.scheme), str(acl.id.id)
            if (perms, scheme, ident) in wanted or (scheme == "digest" and perms == 1):
                continue
            if legacy and scheme == "digest" and ident == self.legacy_id and perms & ~5 == 0:
                continue
            return False
        return True


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
        """`cmd-<seq>` (a daemon's) or `<operator>.cmd-<seq>` (in that operator's folder)."""
        _name("command id", command_id)
        operator, dot, name = command_id.rpartition(".")
        if dot:
            return f"{self.request_dir(operator)}/{name}"
        return f"{self.base}/commands/{command_id}"

    def request_dir(self, operator: str) -> str:
        _name("operator", operator)
        return f"{self.base}/requests/{operator}"

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
