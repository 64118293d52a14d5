"""The ZooKeeper session under `ZooKeeperCoordinator`: kazoo client, state, bounded calls.

Every call is a kazoo `*_async(...)` bounded by `op_timeout_s` (plain kazoo calls block forever
while disconnected). Session changes arrive on kazoo's thread and only update local state and
wake subscribers.

Errors: no kazoo exception leaves the coordinator. `_call` turns the session's failures into
`CoordinatorUnavailable` and refusals into `NotAuthorized`, and lets `NoNodeError` and
`NodeExistsError` through to the code that expects them; every public method is wrapped by
`edge`, which translates whatever kazoo error is left (`translate`). Malformed node contents
are a `CoordinatorError` naming the node (`decoded`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, Self, TypeVar

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    ConnectionDropped,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotReadOnlyCallError,
    OperationTimeoutError,
    RequestTimeoutError,
    SessionExpiredError,
    SessionMovedError,
    ThrottledOpError,
    ZookeeperStoppedError,
)
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.security import ACL

from failover.coord.base import (
    Callback,
    CoordinatorError,
    CoordinatorUnavailable,
    Leadership,
    Member,
    NotAuthorized,
    Role,
    SessionState,
    Topic,
    UntrustedNode,
    VersionConflict,
)
from failover.coord.zkgroups import GroupCache
from failover.coord.zklayout import (
    DIRS,
    LEGACY_OPERATOR_DIRS,
    OPERATOR_DIRS,
    Acls,
    Identity,
    Layout,
)
from failover.coord.zktimeouts import (
    CONNECTION_RETRY,
    BoundedConnect,
    connect_timeout_s,
    silence_timeout_s,
)
from failover.core.model import Observation

log = logging.getLogger("failover.coord.zookeeper")
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
# No usable session, or no answer in time (ConnectionClosedError is a SessionExpiredError).
_UNAVAILABLE = (
    ConnectionLoss,
    SessionExpiredError,
    ConnectionDropped,
    OperationTimeoutError,
    RequestTimeoutError,
    SessionMovedError,
    NotReadOnlyCallError,
    ThrottledOpError,
    ZookeeperStoppedError,
)
_REFUSED = (NoAuthError, AuthFailedError)
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError)  # what decoding bad JSON raises


def translate(what: str, error: KazooException) -> CoordinatorError:
    """The `CoordinatorError` that stands for a kazoo error."""
    kind = type(error).__name__
    if isinstance(error, _UNAVAILABLE):
        return CoordinatorUnavailable(f"{what}: {kind}")
    if isinstance(error, _REFUSED):
        return NotAuthorized(f"{what}: not authorized ({kind})")
    if isinstance(error, BadVersionError):
        return VersionConflict(f"{what}: the node changed meanwhile ({kind})")
    detail = f": {error}" if str(error) else ""
    return CoordinatorError(f"{what}: ZooKeeper refused it ({kind}{detail})")


def edge(method: Callable[P, R]) -> Callable[P, R]:
    """Wrap a public method: a kazoo error still unhandled inside becomes a CoordinatorError."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except KazooException as exc:
            raise translate(method.__name__, exc) from exc

    return wrapper


def decoded(what: str, decoder: Callable[[bytes], T], data: bytes) -> T:
    """`decoder(data)`, with malformed contents (a bug or tampering) a CoordinatorError."""
    try:
        return decoder(data)
    except _MALFORMED as exc:
        kind = type(exc).__name__
        raise CoordinatorError(f"{what}: malformed contents ({kind}: {exc})") from None


_STATES: dict[str, SessionState] = {
    KazooState.CONNECTED: "connected",
    KazooState.SUSPENDED: "suspended",
    KazooState.LOST: "lost",
}


class ZooKeeperSession:
    """One kazoo session with the state the coordinator keeps per session."""

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
        operators: Mapping[str, str] | None = None,
        tls: dict[str, Any] | None = None,
        op_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit_keep: int = 1000,
        commands_keep: int = 100,
        refusals_keep: int = 1000,
    ) -> None:
        self.instance = instance
        self.role = role
        self.layout = Layout(chroot, cluster)
        own = {"daemon": daemon, "operator": operator}.get(role)
        self.own = own
        self.acls = Acls(daemon, operator, operators, own)
        self.session_timeout_s = session_timeout_s
        self.op_timeout_s = op_timeout_s if op_timeout_s is not None else session_timeout_s
        self.clock = clock
        self.audit_keep = audit_keep
        self.commands_keep = commands_keep
        self.refusals_keep = refusals_keep
        try:
            joined = hosts if isinstance(hosts, str) else ",".join(hosts)
            self._zk = KazooClient(
                hosts=joined,
                timeout=session_timeout_s,
                handler=BoundedConnect(
                    connect_timeout_s(session_timeout_s, len(joined.split("/")[0].split(","))),
                    silence_timeout_s(session_timeout_s),
                ),
                auth_data=[own.auth] if own else None,
                connection_retry=dict(CONNECTION_RETRY),
                logger=log,
                **(tls or {}),
            )
        except (KazooException, ValueError) as exc:
            raise CoordinatorError(f"{instance}: ZooKeeper client settings: {exc}") from None
        self._lock = threading.Lock()
        self._callbacks: list[Callback] = []
        self._silent_until = 0.0  # monotonic: calls fail at once until then (`_call`)
        self._state: SessionState = "lost"
        self._disconnected_since: float | None = clock()
        self._session_id: int | None = None
        self._contender: str | None = None  # full path of this instance's election node
        self._leadership: Leadership | None = None
        self._term_version = -1
        self._member_done: Member | None = None
        self._published = False
        # path -> (the bytes last read, what they decoded to): observations decoded once
        self._observations_read: dict[str, tuple[bytes, list[Observation]]] = {}
        self._commits = 0
        self._submits = 0
        self._refusal_records = 0
        self._layout_ready = False
        self._started = False
        self._watchers: dict[Topic, Callable[[WatchedEvent], None]] = {
            topic: self._make_watcher(topic)
            for topic in (
                "members",
                "leadership",
                "observations",
                "desired",
                "applied",
                "commands",
                "audit",
            )
        }
        self._group_cache = GroupCache(self._zk, self.layout, self._call, self._wake)
        self._zk.add_listener(self._on_state)

    # --- session -------------------------------------------------------------------------------

    @edge
    def connect(self, timeout_s: float = 10.0) -> Self:
        """Start the session; raise CoordinatorUnavailable if not connected within `timeout_s`
        (the client keeps trying in the background). A daemon also creates the layout.
        Calling it again only waits: kazoo is started once (restarting it while suspended would
        tear down the connection it is re-establishing)."""
        if not self._started:
            self._started = True
            self._zk.start_async()
        deadline = time.monotonic() + timeout_s
        while not self._zk.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._zk.connected:
            raise CoordinatorUnavailable(
                f"{self.instance}: no ZooKeeper session within {timeout_s:g} s ({self._zk.hosts})"
            )
        if self._zk.state == KazooState.CONNECTED:
            self._on_state(KazooState.CONNECTED)  # kazoo's own call to the listener may lag
        if self.role == "daemon":
            self.ensure_layout()
        return self

    @edge
    def ensure_layout(self) -> None:
        """Create the base path and its folders with their ACLs (idempotent). A daemon does it
        at its first write if `connect()` could not (the ensemble was down at start)."""
        paths = [*self.layout.ancestors(), *(self.layout.dir(name) for name in DIRS)]
        requests = {self.layout.request_dir(name): name for name in sorted(self.acls.requesters)}
        shared = {self.layout.dir(d) for d in OPERATOR_DIRS}
        legacy = {self.layout.dir(d) for d in LEGACY_OPERATOR_DIRS}
        for path in [*paths, self.layout.term, *requests]:
            if path in requests:
                acl = self.acls.request_dir(requests[path])
            else:
                acl = self.acls.commands_dir if path in shared else self.acls.node
            value = b"0" if path == self.layout.term else b""
            try:
                self._call(self._zk.create_async(path, value, acl=acl), f"create {path}")
            except NodeExistsError:
                if path.startswith(self.layout.base):  # ours: it must carry our ACLs
                    self._check_acl(path, acl, path in legacy)
        self._layout_ready = True

    def _check_acl(self, path: str, expected: list[ACL], legacy: bool = False) -> None:
        """A node of this cluster that someone else created (before the first daemon) would
        be theirs: refuse to use it unless it carries this cluster's ACLs, or ACLs that only
        differ by operators added or removed since (then they are set to this cluster's)."""
        found, stat = self._call(self._zk.get_acls_async(path), f"read the ACL of {path}")
        if _acl_set(found) == _acl_set(expected):
            return
        if self.acls.repairable(found, expected, legacy):
            self._call(
                self._zk.set_acls_async(path, expected, stat.aversion), f"set the ACL of {path}"
            )
            log.info(f"{path}: ACL brought up to date (operators changed)")
            return
        raise UntrustedNode(
            f"{path} exists with ACL [{_describe(found)}], not this cluster's "
            f"[{_describe(expected)}]: someone else created it; refusing to use it "
            "(remove it, or set its ACL, as the ZooKeeper administrator)"
        )

    def session_state(self) -> SessionState:
        return self._state

    def disconnected_since(self) -> float | None:
        return self._disconnected_since

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        with contextlib.suppress(KazooException, OSError):  # a connection already broken
            self._zk.stop()
        with contextlib.suppress(KazooException, OSError):
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
            self._silent_until = 0.0  # a new connection (or none): calls wait again
        if changed:
            self._group_cache.forget()  # watches may be gone with the connection
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
        if event.type == EventType.DELETED:
            with self._lock:
                if event.path == self._contender:
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
            # A server that went silent (a cut) keeps the session "connected": kazoo notices
            # only by an unanswered ping, and sends pings only while no request goes out, so
            # a daemon that calls every cycle never notices, every call waits its whole
            # timeout and a cycle of many calls outlasts the watchdog (the live game-day's
            # inter-site cut). So: drop the connection (kazoo moves to the next server, the
            # session goes on if a quorum server answers in time, as the Java client does
            # when it hears nothing for its read timeout), and fail the next calls at once
            # until the connection changes.
            with self._lock:
                self._silent_until = time.monotonic() + self.op_timeout_s
            log.warning(
                f"{what}: no answer within {self.op_timeout_s:g} s; dropping the connection"
            )
            self._drop_connection()
            raise CoordinatorUnavailable(
                f"{what}: no answer within {self.op_timeout_s:g} s"
            ) from None
        except (*_UNAVAILABLE, *_REFUSED) as exc:
            raise translate(f"{what} as {self.role}", exc) from None

    def _drop_connection(self) -> None:
        """Shut the socket to the current server: kazoo's connection thread sees it broken
        and connects to the next host of its list."""
        connection = getattr(self._zk, "_connection", None)
        sock = getattr(connection, "_socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _enter(self, write: bool = False) -> int:
        if self._state != "connected" or self._session_id is None:
            raise CoordinatorUnavailable(f"{self.instance}: session {self._state}")
        if time.monotonic() < self._silent_until:
            raise CoordinatorUnavailable(
                f"{self.instance}: the server did not answer the last call; "
                "not waiting again until the connection moves or the timeout has passed"
            )
        if write and self.role != "daemon":
            raise NotAuthorized(f"{self.instance}: role {self.role} may not write here")
        session_id = self._session_id
        if write and not self._layout_ready:
            self.ensure_layout()
        # A server may lag the ensemble's leader. A sync queued ahead of this call's requests
        # (one session's requests are served in order) makes its reads see every write that
        # completed before it began, as the in-memory coordinator's do.
        self._zk.sync_async("/")
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
                self._zk.create_async(
                    path, data, acl=self.acls.node, ephemeral=ephemeral, makepath=True
                ),
                f"create {path}",
            )


def _acl_set(acls: Any) -> set[tuple[int, str, str]]:
    return {(int(acl.perms), str(acl.id.scheme), str(acl.id.id)) for acl in acls}


def _describe(acls: Any) -> str:
    """Who may do what, without the digests (they can be brute-forced offline)."""
    return ", ".join(
        sorted(f"{acl.id.scheme}:{str(acl.id.id).split(':', 1)[0]}={acl.perms}" for acl in acls)
    )
