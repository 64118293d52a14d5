"""`ZooKeeperCoordinator`: the `Coordinator` contract on a real ZooKeeper ensemble (kazoo).

Every call is a kazoo `*_async(...)` bounded by `op_timeout_s` (plain kazoo calls block forever
while disconnected). Session changes arrive on kazoo's thread and only update local state and
wake subscribers. See `zklayout` for the paths, ACLs and encodings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    SessionExpiredError,
    ZookeeperError,
)
from kazoo.protocol.states import EventType, WatchedEvent

from failover.coord.audit import GENESIS, chain
from failover.coord.base import (
    NO_NODE,
    AlreadyDone,
    AuditEntry,
    AuditRecord,
    Callback,
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
    SessionState,
    Topic,
    VersionConflict,
)
from failover.coord.zklayout import (
    DIRS,
    Acls,
    Identity,
    Layout,
    decode_entry,
    decode_member,
    decode_observations,
    decode_result,
    dumps,
    encode_entry,
    encode_member,
    encode_observations,
    encode_result,
    parse_contender,
    read_identity,
)
from failover.core.codec import decode, encode
from failover.core.model import Applied, Command, GroupState, Observation

if TYPE_CHECKING:
    from failover.config.model import Config

log = logging.getLogger(__name__)
_UNAVAILABLE = (ConnectionLoss, SessionExpiredError, ConnectionClosedError)
_STATES: dict[str, SessionState] = {
    KazooState.CONNECTED: "connected", KazooState.SUSPENDED: "suspended", KazooState.LOST: "lost",
}
PRUNE_EVERY = 32


class ZooKeeperCoordinator(Coordinator):
    """One instance's client of the ensemble. `connect()` before use; `close()` at the end."""

    def __init__(
        self,
        hosts: str | Sequence[str],
        *,
        cluster: str,
        instance: str,
        role: Role = "daemon",
        chroot: str = "/failover",
        session_timeout_s: float = 4.0,
        daemon: Identity | None = None,
        operator: Identity | None = None,
        tls: dict[str, Any] | None = None,
        op_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit_keep: int = 1000,
        commands_keep: int = 100,
    ) -> None:
        self.instance = instance
        self.role = role
        self.layout = Layout(chroot, cluster)
        self.acls = Acls(daemon, operator)
        self.session_timeout_s = session_timeout_s
        self.op_timeout_s = op_timeout_s if op_timeout_s is not None else session_timeout_s
        self.clock = clock
        self.audit_keep = audit_keep
        self.commands_keep = commands_keep
        own = {"daemon": daemon, "operator": operator}.get(role)
        self._zk = KazooClient(
            hosts=hosts if isinstance(hosts, str) else ",".join(hosts),
            timeout=session_timeout_s,
            auth_data=[own.auth] if own else None,
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5},
            logger=log,
            **(tls or {}),
        )
        self._lock = threading.Lock()
        self._callbacks: list[Callback] = []
        self._state: SessionState = "lost"
        self._disconnected_since: float | None = clock()
        self._session_id: int | None = None
        self._contender: str | None = None  # full path of this instance's election node
        self._leadership: Leadership | None = None
        self._term_version = -1
        self._member_done: Member | None = None
        self._published = False
        self._commits = 0
        self._layout_ready = False
        self._watchers: dict[Topic, Callable[[WatchedEvent], None]] = {
            topic: self._make_watcher(topic)
            for topic in ("members", "leadership", "observations", "desired", "applied",
                          "commands", "audit")
        }
        self._zk.add_listener(self._on_state)

    @classmethod
    def from_config(
        cls, config: Config, instance: str, role: Role = "daemon", **options: Any
    ) -> ZooKeeperCoordinator:
        """Build from the cluster's config: hosts, chroot, session timeout, credentials, TLS."""
        zk = config.cluster.zookeeper
        daemon = (
            read_identity(zk.daemon_auth.credentials_file, "daemon") if zk.daemon_auth else None
        )
        operator = (
            read_identity(zk.operator_auth.credentials_file, "operator")
            if zk.operator_auth
            else None
        )
        tls: dict[str, Any] = {}
        if zk.tls.enabled:
            tls = {"use_ssl": True, "ca": zk.tls.ca_file, "certfile": zk.tls.cert_file,
                   "keyfile": zk.tls.key_file, "verify_certs": True,
                   "check_hostname": zk.tls.verify_hostname}
        settings: dict[str, Any] = {
            "cluster": config.cluster.name, "instance": instance, "role": role,
            "chroot": zk.chroot, "session_timeout_s": zk.session_timeout_s,
            "daemon": daemon, "operator": operator, "tls": tls, **options,
        }
        return cls(zk.hosts, **settings)

    # --- session -------------------------------------------------------------------------------

    def connect(self, timeout_s: float = 10.0) -> ZooKeeperCoordinator:
        """Start the session; raise CoordinatorUnavailable if not connected within `timeout_s`
        (the client keeps trying in the background). A daemon also creates the layout."""
        event = self._zk.start_async()
        event.wait(timeout_s)
        if not self._zk.connected:
            raise CoordinatorUnavailable(
                f"{self.instance}: no ZooKeeper session within {timeout_s:g} s ({self._zk.hosts})"
            )
        self._on_state(KazooState.CONNECTED)
        if self.role == "daemon":
            self.ensure_layout()
        return self

    def ensure_layout(self) -> None:
        """Create the base path and its folders with their ACLs (idempotent). A daemon does it
        at its first write if `connect()` could not (the ensemble was down at start)."""
        paths = [*self.layout.ancestors(), *(self.layout.dir(name) for name in DIRS)]
        for path in [*paths, self.layout.term]:
            acl = self.acls.commands_dir if path == self.layout.dir("commands") else self.acls.node
            value = b"0" if path == self.layout.term else b""
            with contextlib.suppress(NodeExistsError):
                self._call(self._zk.create_async(path, value, acl=acl), f"create {path}")
        self._layout_ready = True

    def session_state(self) -> SessionState:
        return self._state

    def disconnected_since(self) -> float | None:
        return self._disconnected_since

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._zk.stop()
        with contextlib.suppress(Exception):
            self._zk.close()
        self._on_state(KazooState.LOST)

    @property
    def session_id(self) -> int | None:
        return self._session_id

    @property
    def client_id(self) -> tuple[int, bytes] | None:
        """The session's (id, password): tests use it to expire the session from outside."""
        client_id: tuple[int, bytes] | None = self._zk.client_id
        return client_id

    def _on_state(self, kazoo_state: str) -> None:
        """kazoo's listener (its thread): local bookkeeping and wake-ups only, no I/O."""
        state = _STATES[kazoo_state]
        with self._lock:
            if state == "connected":
                client_id = self._zk.client_id
                session_id = client_id[0] if client_id else None
                if session_id != self._session_id:
                    self._forget_session()
                    self._session_id = session_id
                self._disconnected_since = None
            else:
                if state == "lost":
                    self._forget_session()
                    self._session_id = None
                if self._disconnected_since is None:
                    self._disconnected_since = self.clock()
            changed = state != self._state
            self._state = state
        if changed:
            self._wake("session")

    def _forget_session(self) -> None:
        self._contender = None
        self._leadership = None
        self._member_done = None
        self._published = False

    def _make_watcher(self, topic: Topic) -> Callable[[WatchedEvent], None]:
        def watcher(event: WatchedEvent) -> None:
            self._wake(topic)

        return watcher

    def _own_node_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.DELETED and event.path == self._contender:
            with self._lock:
                self._leadership = None
                self._contender = None
        self._wake("leadership")

    def _wake(self, topic: Topic) -> None:
        for callback in list(self._callbacks):
            try:
                callback(topic)
            except Exception:  # a subscriber's bug must not kill kazoo's thread
                log.exception("coordinator subscriber failed on %s", topic)

    # --- calls ---------------------------------------------------------------------------------

    def _call(self, pending: Any, what: str) -> Any:
        try:
            return pending.get(timeout=self.op_timeout_s)
        except self._zk.handler.timeout_exception:
            raise CoordinatorUnavailable(
                f"{what}: no answer within {self.op_timeout_s:g} s"
            ) from None
        except _UNAVAILABLE as exc:
            raise CoordinatorUnavailable(f"{what}: {type(exc).__name__}") from None
        except NoAuthError:
            raise NotAuthorized(f"{what}: not authorized as {self.role}") from None

    def _enter(self, write: bool = False) -> int:
        if self._state != "connected" or self._session_id is None:
            raise CoordinatorUnavailable(f"{self.instance}: session {self._state}")
        if write and self.role != "daemon":
            raise NotAuthorized(f"{self.instance}: role {self.role} may not write here")
        session_id = self._session_id
        if write and not self._layout_ready:
            self.ensure_layout()
        return session_id

    def _get(self, path: str, topic: Topic | None) -> tuple[bytes, Any] | None:
        watch = self._watchers[topic] if topic else None
        try:
            data, stat = self._call(self._zk.get_async(path, watch=watch), f"read {path}")
        except NoNodeError:
            if watch is not None:  # arm a watch on the node's creation
                self._call(self._zk.exists_async(path, watch=watch), f"watch {path}")
            return None
        return data, stat

    def _children(self, path: str, topic: Topic | None) -> list[str]:
        watch = self._watchers[topic] if topic else None
        try:
            children = self._call(self._zk.get_children_async(path, watch=watch), f"list {path}")
        except NoNodeError:
            if watch is not None:
                self._call(self._zk.exists_async(path, watch=watch), f"watch {path}")
            return []
        return sorted(children)

    def _get_many(self, paths: list[str], topic: Topic | None) -> dict[str, bytes]:
        """Read several nodes in parallel; missing ones are left out."""
        watch = self._watchers[topic] if topic else None
        pending = [(path, self._zk.get_async(path, watch=watch)) for path in paths]
        found: dict[str, bytes] = {}
        for path, result in pending:
            with contextlib.suppress(NoNodeError):
                found[path] = self._call(result, f"read {path}")[0]
        return found

    def _put(self, path: str, data: bytes, ephemeral: bool = False) -> None:
        """Set a node owned by this session, creating it if absent."""
        try:
            self._call(self._zk.set_async(path, data), f"write {path}")
        except NoNodeError:
            self._call(
                self._zk.create_async(path, data, acl=self.acls.node, ephemeral=ephemeral,
                                      makepath=True),
                f"create {path}",
            )

    # --- membership ----------------------------------------------------------------------------

    def register(self, member: Member) -> None:
        session_id = self._enter(write=True)
        if self._member_done == member:
            return
        path = self.layout.member(member.instance)
        try:
            self._call(
                self._zk.create_async(path, encode_member(member), acl=self.acls.node,
                                      ephemeral=True),
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

    def members(self) -> dict[str, Member]:
        self._enter()
        names = self._children(self.layout.dir("members"), "members")
        found = self._get_many([self.layout.member(name) for name in names], "members")
        return {decode_member(data).instance: decode_member(data) for data in found.values()}

    # --- election ------------------------------------------------------------------------------

    def campaign(self) -> Leadership | None:
        session_id = self._enter(write=True)
        leader_dir = self.layout.dir("leader")
        names = self._children(leader_dir, "leadership")
        contenders = sorted(parse_contender(name) + (name,) for name in names)
        mine = [c for c in contenders if c[1] == self.instance and c[2] == session_id]
        if mine:
            for extra in mine[1:]:  # left by a create whose answer was lost
                with contextlib.suppress(NoNodeError):
                    self._call(self._zk.delete_async(f"{leader_dir}/{extra[3]}"), "tidy election")
            own = f"{leader_dir}/{mine[0][3]}"
            won = contenders[0] == mine[0]
        else:
            with self._lock:
                self._leadership = None
            prefix = self.layout.contender_prefix(self.instance, session_id)
            own = self._call(
                self._zk.create_async(prefix, b"", acl=self.acls.node, ephemeral=True,
                                      sequence=True),
                "join the election",
            )
            won = not contenders
        self._contender = own
        self._call(self._zk.exists_async(own, watch=self._own_node_watch), "watch own node")
        if not won:
            with self._lock:
                self._leadership = None
            return None
        if self._leadership is None:
            self._leadership = self._take_term(own)
        return self._leadership

    def _take_term(self, own: str) -> Leadership:
        """Bump the term, fenced by this instance's election node."""
        for _ in range(5):
            found = self._get(self.layout.term, None)
            if found is None:
                raise CoordinatorError(f"{self.layout.term} is missing: run a daemon first")
            term = int(found[0] or b"0") + 1
            transaction = self._zk.transaction()
            transaction.check(own, 0)
            transaction.set_data(self.layout.term, str(term).encode(), found[1].version)
            results = self._call(transaction.commit_async(), "take a term")
            failure = _first_failure(results)
            if failure is None:
                self._term_version = found[1].version + 1
                return Leadership(self.instance, term)
            if failure[0] == 0:
                raise NotLeader(f"{self.instance}: election node vanished while winning")
        raise CoordinatorUnavailable(f"{self.instance}: could not take a term")

    def leadership(self) -> Leadership | None:
        return self._leadership if self._state == "connected" else None

    def leader(self) -> Leadership | None:
        self._enter()
        names = self._children(self.layout.dir("leader"), "leadership")
        if not names:
            return None
        _, instance, _ = min(parse_contender(name) for name in names)
        found = self._get(self.layout.term, None)
        return Leadership(instance, int(found[0] or b"0") if found else 0)

    def resign(self) -> None:
        self._enter(write=True)
        own, self._contender = self._contender, None
        with self._lock:
            self._leadership = None
        if own is not None:
            with contextlib.suppress(NoNodeError):
                self._call(self._zk.delete_async(own), "resign")

    # --- observations --------------------------------------------------------------------------

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

    def observations(self) -> list[Observation]:
        self._enter()
        names = self._children(self.layout.dir("observations"), "observations")
        found = self._get_many([self.layout.observation(name) for name in names], "observations")
        return [item for path in sorted(found) for item in decode_observations(found[path])]

    # --- desired and applied state -------------------------------------------------------------

    def desired(self, group: str) -> tuple[GroupState | None, int]:
        self._enter()
        found = self._get(self.layout.state(group), "desired")
        if found is None:
            return None, NO_NODE
        return decode(GroupState, found[0]), int(found[1].version)

    def commit(
        self,
        leadership: Leadership,
        *,
        desired: Sequence[tuple[GroupState, int]] = (),
        results: Sequence[CommandResult] = (),
        audit: Sequence[AuditRecord] = (),
    ) -> CommitResult:
        self._enter(write=True)
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
            transaction.create(self.layout.result(result.command_id), encode_result(result),
                               self.acls.node)
            labels += [f"command:{result.command_id}", f"result:{result.command_id}"]
        entries: list[AuditEntry] = []
        if audit:
            (head_seq, head_hash), head_version = self._audit_head()
            entries = chain(audit, head_seq, head_hash)
            transaction.set_data(
                self.layout.audit, dumps({"seq": entries[-1].seq, "hash": entries[-1].hash}),
                head_version,
            )
            labels.append("audit")
            for entry in entries:
                transaction.create(self.layout.audit_entry(entry.seq), encode_entry(entry),
                                   self.acls.node)
                labels.append("audit")
        outcome = self._call(transaction.commit_async(), "commit")
        failure = _first_failure(outcome)
        if failure is not None:
            self._refuse(labels[failure[0]], failure[1], leadership)
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
            if data is not None and state.epoch < decode(GroupState, data).epoch:
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
        head = json_loads(data)
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

    def report_applied(self, applied: Applied) -> None:
        self._enter(write=True)
        self._put(self.layout.applied(applied.group, applied.site), encode(applied))

    def applied(self, group: str) -> dict[str, Applied]:
        self._enter()
        sites = self._children(self.layout.applied_dir(group), "applied")
        found = self._get_many([self.layout.applied(group, site) for site in sites], "applied")
        values = [decode(Applied, data) for data in found.values()]
        return {value.site: value for value in sorted(values, key=lambda value: value.site)}

    # --- operator commands ---------------------------------------------------------------------

    def submit(self, command: Command) -> str:
        self._enter()
        path = self._call(
            self._zk.create_async(self.layout.command("cmd-"), encode(replace(command, id="")),
                                  acl=self.acls.node, sequence=True),
            "submit a command",
        )
        return str(path).rsplit("/", 1)[1]

    def pending_commands(self) -> list[Command]:
        self._enter()
        ids = self._children(self.layout.dir("commands"), "commands")
        done = set(self._children(self.layout.dir("results"), None))
        pending = [cid for cid in ids if cid not in done]
        found = self._get_many([self.layout.command(cid) for cid in pending], None)
        return [
            replace(decode(Command, found[self.layout.command(cid)]), id=cid)
            for cid in pending
            if self.layout.command(cid) in found
        ]

    def command_result(self, command_id: str) -> CommandResult | None:
        self._enter()
        found = self._get(self.layout.result(command_id), None)
        return None if found is None else decode_result(found[0])

    # --- audit ---------------------------------------------------------------------------------

    def audit(self, limit: int | None = None) -> list[AuditEntry]:
        self._enter()
        names = self._children(self.layout.audit, "audit")
        if limit is not None:
            names = names[-limit:] if limit > 0 else []
        found = self._get_many([f"{self.layout.audit}/{name}" for name in names], None)
        return [decode_entry(found[path]) for path in sorted(found)]

    def audit_head(self) -> tuple[int, str]:
        self._enter()
        return self._audit_head()[0]


def _first_failure(results: list[Any]) -> tuple[int, Exception] | None:
    """The index and error of the operation that failed a transaction, if any."""
    for index, result in enumerate(results):
        if isinstance(result, Exception) and not isinstance(result, RolledBackError):
            return index, result
    return None


def json_loads(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise CoordinatorError("malformed audit head")
    return value


__all__ = ["ZooKeeperCoordinator"]
