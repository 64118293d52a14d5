"""`ZooKeeperCoordinator`: the `Coordinator` contract on a real ZooKeeper ensemble (kazoo).

Every call is a kazoo `*_async(...)` bounded by `op_timeout_s` (plain kazoo calls block forever
while disconnected). Session changes arrive on kazoo's thread and only update local state and
wake subscribers. See `zklayout` for the paths, ACLs and encodings.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import (
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    ZookeeperError,
)

from failover.coord.audit import GENESIS, chain
from failover.coord.base import (
    NO_NODE,
    AlreadyDone,
    AuditEntry,
    AuditRecord,
    CommandResult,
    CommitResult,
    Coordinator,
    CoordinatorError,
    CoordinatorUnavailable,
    DuplicateInstance,
    Leadership,
    Member,
    NotAuthorized,
    NotLeader,
    Role,
    VersionConflict,
)
from failover.coord.zklayout import (
    decode_member,
    decode_observations,
    dumps,
    encode_entry,
    encode_member,
    encode_observations,
    encode_result,
    operator_ids,
    parse_contender,
    read_identity,
)
from failover.coord.zkrecords import PRUNE_EVERY, ZooKeeperRecords, first_failure, json_loads
from failover.coord.zksession import decoded, edge
from failover.core.codec import decode, encode
from failover.core.model import Applied, Command, GroupState, Observation

if TYPE_CHECKING:
    from failover.config.model import Config

log = logging.getLogger(__name__)


class ZooKeeperCoordinator(ZooKeeperRecords, Coordinator):
    """One instance's client of the ensemble. `connect()` before use; `close()` at the end."""

    @classmethod
    def from_config(
        cls, config: Config, instance: str, role: Role = "daemon", **options: Any
    ) -> ZooKeeperCoordinator:
        """Build from the cluster's config: hosts, chroot, session timeout, credentials, TLS."""
        zk = config.cluster.zookeeper
        daemon = (
            read_identity(zk.daemon_auth.credentials_file, "daemon") if zk.daemon_auth else None
        )
        operator = options.pop("identity", None) or (
            read_identity(zk.operator_auth.credentials_file, "operator")
            if zk.operator_auth
            else None
        )
        operators = operator_ids(config) if role == "daemon" else {}
        if daemon is None and role == "daemon":
            if not zk.insecure_open_acl:
                raise CoordinatorError(
                    "cluster.zookeeper.daemon_auth is not set: every node would be open to "
                    "anyone who can reach ZooKeeper (set it, or insecure_open_acl: true)"
                )
            log.warning(
                "cluster.zookeeper.insecure_open_acl: INSECURE: no daemon_auth, every node "
                "of the cluster is open to anyone who can reach ZooKeeper"
            )
        tls: dict[str, Any] = {}
        if zk.tls.enabled:
            tls = {
                "use_ssl": True,
                "ca": zk.tls.ca_file,
                "certfile": zk.tls.cert_file,
                "keyfile": zk.tls.key_file,
                "verify_certs": True,
                "check_hostname": zk.tls.verify_hostname,
            }
        settings: dict[str, Any] = {
            "cluster": config.cluster.name,
            "instance": instance,
            "role": role,
            "chroot": zk.chroot,
            "session_timeout_s": zk.session_timeout_s,
            "daemon": daemon,
            "operator": operator,
            "operators": operators,
            "tls": tls,
            **options,
        }
        return cls(zk.hosts, **settings)

    # --- membership ----------------------------------------------------------------------------

    @edge
    def register(self, member: Member) -> None:
        session_id = self._enter(write=True)
        if self._member_done == member:
            return
        path = self.layout.member(member.instance)
        try:
            self._call(
                self._zk.create_async(
                    path, encode_member(member), acl=self.acls.node, ephemeral=True
                ),
                f"register {member.instance}",
            )
        except NodeExistsError:
            found = self._get(path, None)
            if found is not None and found[1].ephemeralOwner != session_id:
                raise DuplicateInstance(
                    f"instance {member.instance!r} is registered by another session"
                ) from None
            self._call(self._zk.set_async(path, encode_member(member)), f"register {path}")
        self._member_done = member

    @edge
    def members(self) -> dict[str, Member]:
        self._enter()
        names = self._children(self.layout.dir("members"), "members")
        found = self._get_many([self.layout.member(name) for name in names], "members")
        members = [decoded(path, decode_member, data) for path, data in found.items()]
        return {member.instance: member for member in members}

    # --- election ------------------------------------------------------------------------------

    @edge
    def campaign(self) -> Leadership | None:
        session_id = self._enter(write=True)
        leader_dir = self.layout.dir("leader")
        names = self._children(leader_dir, "leadership")
        contenders = sorted(_contender(name) + (name,) for name in names)
        mine = [c for c in contenders if c[1] == self.instance and c[2] == session_id]
        if mine:
            for extra in mine[1:]:  # left by a create whose answer was lost
                with contextlib.suppress(NoNodeError):
                    self._call(self._zk.delete_async(f"{leader_dir}/{extra[3]}"), "tidy election")
            own = f"{leader_dir}/{mine[0][3]}"
            won = contenders[0] == mine[0]
        else:
            prefix = self.layout.contender_prefix(self.instance, session_id)
            own = self._call(
                self._zk.create_async(
                    prefix, b"", acl=self.acls.node, ephemeral=True, sequence=True
                ),
                "join the election",
            )
            # Look again: a contender that joined just before may hold a lower number.
            names = self._children(leader_dir, "leadership")
            seqs = [_contender(name)[0] for name in names]
            won = bool(seqs) and min(seqs) == _contender(own.rsplit("/", 1)[1])[0]
        with self._lock:  # kazoo's thread writes these too (session changes, the node's watch)
            if self._session_id != session_id:
                raise CoordinatorUnavailable(f"{self.instance}: the session changed meanwhile")
            if self._contender != own:  # a new election node: what the old one won is gone
                self._leadership = None
            self._contender = own
        stat = self._call(self._zk.exists_async(own, watch=self._own_node_watch), "watch own node")
        with self._lock:
            if stat is None and self._contender == own:  # gone before the watch was armed
                self._contender = None
            if stat is None or not won or self._contender != own:
                self._leadership = None
                return None
            held = self._leadership
        if held is None:
            held = self._take_term(own)
            with self._lock:
                if self._contender != own or self._session_id != session_id:
                    return None  # the node went while the term was taken
                self._leadership = held
        return held

    def _take_term(self, own: str) -> Leadership:
        """Bump the term, fenced by this instance's election node."""
        for _ in range(5):
            found = self._get(self.layout.term, None)
            if found is None:
                raise CoordinatorError(f"{self.layout.term} is missing: run a daemon first")
            term = _term(found[0]) + 1
            transaction = self._zk.transaction()
            transaction.check(own, 0)
            transaction.set_data(self.layout.term, str(term).encode(), found[1].version)
            results = self._call(transaction.commit_async(), "take a term")
            failure = first_failure(results)
            if failure is None:
                self._term_version = found[1].version + 1
                return Leadership(self.instance, term)
            if failure[0] == 0:
                raise NotLeader(f"{self.instance}: election node vanished while winning")
        raise CoordinatorUnavailable(f"{self.instance}: could not take a term")

    def leadership(self) -> Leadership | None:
        with self._lock:
            return self._leadership if self._state == "connected" else None

    @edge
    def leader(self) -> Leadership | None:
        self._enter()
        names = self._children(self.layout.dir("leader"), "leadership")
        if not names:
            return None
        _, instance, _ = min(_contender(name) for name in names)
        found = self._get(self.layout.term, None)
        return Leadership(instance, _term(found[0]) if found else 0)

    @edge
    def resign(self) -> None:
        self._enter(write=True)
        with self._lock:
            own, self._contender, self._leadership = self._contender, None, None
        if own is not None:
            with contextlib.suppress(NoNodeError):
                self._call(self._zk.delete_async(own), "resign")

    # --- observations --------------------------------------------------------------------------

    @edge
    def publish(self, observations: Sequence[Observation]) -> None:
        session_id = self._enter(write=True)
        path = self.layout.observation(self.instance)
        data = encode_observations(list(observations))
        if not self._published:
            found = self._get(path, None)
            if found is not None and found[1].ephemeralOwner != session_id:
                raise DuplicateInstance(
                    f"observations of {self.instance!r} belong to another session"
                )
        self._put(path, data, ephemeral=True)
        self._published = True

    @edge
    def observations(self) -> list[Observation]:
        self._enter()
        names = self._children(self.layout.dir("observations"), "observations")
        found = self._get_many([self.layout.observation(name) for name in names], "observations")
        # most reads find most nodes unchanged (a heartbeat every few seconds): decode only
        # what changed, so that a leader of many checks spends its cycle deciding, not parsing
        cache = {path: hit for path, hit in self._observations_read.items() if path in found}
        for path, data in found.items():
            if path not in cache or cache[path][0] != data:
                cache[path] = (data, decoded(path, decode_observations, data))
        self._observations_read = cache
        return [item for path in sorted(found) for item in cache[path][1]]

    # --- desired and applied state -------------------------------------------------------------

    @edge
    def desired(self, group: str) -> tuple[GroupState | None, int]:
        self._enter()
        path = self.layout.state(group)
        found = self._get(path, "desired")
        if found is None:
            return None, NO_NODE
        return decoded(path, _group_state, found[0]), int(found[1].version)

    @edge
    def commit(
        self,
        leadership: Leadership,
        *,
        desired: Sequence[tuple[GroupState, int]] = (),
        results: Sequence[CommandResult] = (),
        audit: Sequence[AuditRecord] = (),
    ) -> CommitResult:
        self._enter(write=True)
        with self._lock:
            own, held = self._contender, self._leadership
        if own is None or held != leadership:
            raise NotLeader(f"{self.instance}: does not hold {leadership} (holds {held})")
        self._check_epochs(desired)
        transaction = self._zk.transaction()
        labels = ["leader", "term"]
        transaction.check(own, 0)
        transaction.check(self.layout.term, self._term_version)
        for state, version in desired:
            path = self.layout.state(state.group)
            if version == NO_NODE:
                transaction.create(path, encode(state), self.acls.node)
            else:
                transaction.set_data(path, encode(state), version)
            labels.append(f"desired:{state.group}")
        for result in results:
            transaction.check(self.layout.command(result.command_id), 0)
            transaction.create(
                self.layout.result(result.command_id), encode_result(result), self.acls.node
            )
            labels += [f"command:{result.command_id}", f"result:{result.command_id}"]
        entries: list[AuditEntry] = []
        if audit:
            (head_seq, head_hash), head_version = self._audit_head()
            entries = chain(audit, head_seq, head_hash)
            transaction.set_data(
                self.layout.audit,
                dumps({"seq": entries[-1].seq, "hash": entries[-1].hash}),
                head_version,
            )
            labels.append("audit")
            for entry in entries:
                transaction.create(
                    self.layout.audit_entry(entry.seq), encode_entry(entry), self.acls.node
                )
                labels.append("audit")
        self._group_cache.forget(state.group for state, _ in desired)
        outcome = self._call(transaction.commit_async(), "commit")
        failure = first_failure(outcome)
        if failure is not None:
            self._refuse(labels[failure[0]], failure[1], leadership)
        if entries:  # the head, kept outside ZooKeeper too: `history --verify --heads LOG`
            log.info(
                f"audit head {entries[-1].seq} {entries[-1].hash}",
                extra={"fields": {"audit_seq": entries[-1].seq, "audit_hash": entries[-1].hash}},
            )
        self._commits += 1
        if self._commits % PRUNE_EVERY == 0:
            self._prune(own)
        return CommitResult(
            versions={state.group: version + 1 for state, version in desired},
            audit=tuple(entries),
        )

    def _check_epochs(self, desired: Sequence[tuple[GroupState, int]]) -> None:
        paths = [self.layout.state(state.group) for state, _ in desired]
        pending = [self._zk.get_async(path) for path in paths]
        for (state, version), result in zip(desired, pending, strict=True):
            try:
                data, stat = self._call(result, f"read {state.group}")
            except NoNodeError:
                data, stat = None, None
            held_version = NO_NODE if stat is None else int(stat.version)
            if held_version != version:
                raise VersionConflict(
                    f"desired state of {state.group}: version {held_version}, expected {version}"
                )
            held = (
                None
                if data is None
                else decoded(f"desired state of {state.group}", _group_state, data)
            )
            if held is not None and state.epoch < held.epoch:
                raise VersionConflict(
                    f"desired state of {state.group}: epoch {state.epoch} would go backwards"
                )

    def _refuse(self, label: str, error: Exception, leadership: Leadership) -> None:
        kind, _, name = label.partition(":")
        if isinstance(error, NoAuthError):
            raise NotAuthorized(f"commit refused at {label}: not authorized")
        if kind in ("leader", "term"):
            with self._lock:
                self._leadership = None
            raise NotLeader(f"{self.instance}: {leadership} is no longer current ({kind})")
        if kind == "result" and isinstance(error, NodeExistsError):
            raise AlreadyDone(f"command {name} already has a result")
        if kind == "command":
            raise VersionConflict(f"command {name} does not exist")
        raise VersionConflict(f"commit refused at {label}: {type(error).__name__}")

    def _audit_head(self) -> tuple[tuple[int, str], int]:
        found = self._get(self.layout.audit, None)
        if found is None:
            raise CoordinatorError(f"{self.layout.audit} is missing")
        data, stat = found
        if not data:
            return (0, GENESIS), int(stat.version)
        head = decoded(self.layout.audit, json_loads, data)
        return (int(head["seq"]), str(head["hash"])), int(stat.version)

    def _prune(self, own: str) -> None:
        """Drop audit entries and finished commands beyond retention (fenced, best effort)."""
        with contextlib.suppress(CoordinatorError, ZookeeperError):
            entries = self._children(self.layout.audit, None)
            doomed = [f"{self.layout.audit}/{name}" for name in entries[: -self.audit_keep]]
            done = self._children(self.layout.dir("results"), None)
            for name in done[: max(0, len(done) - self.commands_keep)]:
                doomed += [self.layout.result(name), self.layout.command(name)]
            for start in range(0, len(doomed), 200):
                transaction = self._zk.transaction()
                transaction.check(own, 0)
                for path in doomed[start : start + 200]:
                    transaction.delete(path)
                self._call(transaction.commit_async(), "prune")

    @edge
    def report_applied(self, applied: Applied) -> None:
        self._enter(write=True)
        self._group_cache.forget([applied.group])
        self._put(self.layout.applied(applied.group, applied.site), encode(applied))

    @edge
    def applied(self, group: str) -> dict[str, Applied]:
        self._enter()
        sites = self._children(self.layout.applied_dir(group), "applied")
        found = self._get_many([self.layout.applied(group, site) for site in sites], "applied")
        values = [decoded(path, _applied, data) for path, data in found.items()]
        return {value.site: value for value in sorted(values, key=lambda value: value.site)}

    @edge
    def groups(
        self, names: Sequence[str]
    ) -> dict[str, tuple[GroupState | None, int, dict[str, Applied]]]:
        """Read through a cache that watches invalidate (see `failover.coord.zkgroups`)."""
        self._enter()
        return self._group_cache.groups(
            names,
            lambda path, data: decoded(path, _group_state, data),
            lambda path, data: decoded(path, _applied, data),
        )

    @edge
    def audit_head(self) -> tuple[int, str]:
        self._enter()
        return self._audit_head()[0]


def _group_state(data: bytes) -> GroupState:
    return decode(GroupState, data)


def _applied(data: bytes) -> Applied:
    return decode(Applied, data)


def _command(data: bytes) -> Command:
    return decode(Command, data)


def _term(data: bytes) -> int:
    try:
        return int(data or b"0")
    except ValueError:
        raise CoordinatorError(f"the term node holds {data[:20]!r}, not a number") from None


def _contender(name: str) -> tuple[int, str, int]:
    """`parse_contender`, with a stranger's node in the election folder a CoordinatorError."""
    try:
        return parse_contender(name)
    except ValueError:
        raise CoordinatorError(f"election node {name!r} is not one of ours") from None


__all__ = ["ZooKeeperCoordinator"]
