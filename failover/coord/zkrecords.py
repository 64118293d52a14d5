"""The command queue and the records (audit, refused requests, shadows) of
`ZooKeeperCoordinator`, on a real ensemble: see `zklayout` for the paths and ACLs."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import replace
from typing import Any

from kazoo.exceptions import (
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    ZookeeperError,
)

from failover.coord.base import (
    AlreadyUsed,
    AuditEntry,
    CommandResult,
    CoordinatorError,
    NotAuthorized,
)
from failover.coord.commands import check_once, parse_command, stamped
from failover.coord.zklayout import decode_entry, decode_result, dumps
from failover.coord.zksession import ZooKeeperSession, decoded, edge
from failover.core.codec import encode
from failover.core.model import Command

PRUNE_EVERY = 32


PRUNE_EVERY = 32


class ZooKeeperRecords(ZooKeeperSession):
    # --- operator commands ---------------------------------------------------------------------

    @edge
    def submit(self, command: Command, once: str | None = None, once_until: float = 0.0) -> str:
        self._enter(write=once is not None)
        data = encode(replace(command, id=""))
        if once is None:
            return self._submit_one(data)
        path = self.layout.once(check_once(once))
        for _attempt in range(2):
            transaction = self._zk.transaction()
            transaction.create(path, dumps({"until": once_until}), self.acls.node)
            transaction.create(self.layout.command("cmd-"), data, self.acls.node, sequence=True)
            results = self._call(transaction.commit_async(), "submit a command once")
            failure = first_failure(results)
            if failure is None:
                self._submits += 1
                if self._submits % PRUNE_EVERY == 1:
                    self._prune_once()
                return str(results[1]).rsplit("/", 1)[1]
            if isinstance(failure[1], NoAuthError):
                raise NotAuthorized("submit a command once: not authorized")
            if failure[0] != 0 or not isinstance(failure[1], NodeExistsError):
                raise CoordinatorError(f"submit a command once: {type(failure[1]).__name__}")
            if not self._drop_expired_once(path):
                raise AlreadyUsed("this request was already used")
        raise AlreadyUsed("this request was already used")

    def _submit_one(self, data: bytes) -> str:
        """A daemon queues in `commands/`; an operator in its own `requests/<user>/`."""
        mine = self.own.user if self.role == "operator" and self.own else None
        folder = self.layout.request_dir(mine) if mine else self.layout.dir("commands")
        try:
            path = self._call(
                self._zk.create_async(f"{folder}/cmd-", data, acl=self.acls.node, sequence=True),
                "submit a command",
            )
        except NoNodeError:
            known = mine and self._get(self.layout.dir("requests"), None) is not None
            raise CoordinatorError(
                f"submit a command: {folder} does not exist: "
                + (
                    f"{mine!r} is not an operator of this cluster (cluster.zookeeper.operators), "
                    "or no daemon has started since it was added"
                    if known
                    else "no daemon has run against this ensemble yet"
                )
            ) from None
        name = str(path).rsplit("/", 1)[1]
        return f"{mine}.{name}" if mine else name

    def _drop_expired_once(self, path: str) -> bool:
        """Delete a once-only node whose time has passed; True if it is gone."""
        found = self._get(path, None)
        if found is None:
            return True
        try:
            until = float(json_loads(found[0]).get("until", 0.0))
        except (ValueError, TypeError, CoordinatorError):
            until = 0.0
        if until > time.time():
            return False
        with contextlib.suppress(NoNodeError):
            self._call(self._zk.delete_async(path, found[1].version), "drop a used id")
        return True

    def _prune_once(self) -> None:
        """Drop once-only ids whose time has passed (best effort; bounded space)."""
        with contextlib.suppress(CoordinatorError, ZookeeperError):
            base = self.layout.dir("once")
            for name in self._children(base, None):
                self._drop_expired_once(f"{base}/{name}")

    @edge
    def pending_commands(self) -> list[Command]:
        """Commands without a result, in the order ZooKeeper created them. A command from
        `requests/<operator>/` is by that operator: only its identity can create there (a
        different name it claims is kept beside, as `<operator> (says <claim>)`)."""
        self._enter()
        ids = self._children(self.layout.dir("commands"), "commands")
        requests = self.layout.dir("requests")
        folders = self._children(requests, "commands")
        if self.role == "daemon" and self.acls.enabled:  # only folders this cluster made
            folders = [name for name in folders if name in self.acls.requesters]
        for folder in folders:
            with contextlib.suppress(NotAuthorized):
                names = self._children(f"{requests}/{folder}", "commands")
                ids += [f"{folder}.{name}" for name in names]
        done = set(self._children(self.layout.dir("results"), None))
        pending = [cid for cid in ids if cid not in done]
        paths = [self.layout.command(cid) for cid in pending]
        reads = [self._zk.get_async(path) for path in paths]
        found: list[tuple[int, Command]] = []
        for cid, result in zip(pending, reads, strict=True):
            try:
                data, stat = self._call(result, f"read command {cid}")
            except NoNodeError:
                continue
            found.append((int(stat.czxid), stamped(cid, parse_command(cid, data))))
        return [command for _, command in sorted(found, key=lambda item: item[0])]

    @edge
    def command_result(self, command_id: str) -> CommandResult | None:
        self._enter()
        path = self.layout.result(command_id)
        found = self._get(path, None)
        return None if found is None else decoded(path, decode_result, found[0])

    # --- audit ---------------------------------------------------------------------------------

    @edge
    def audit(self, limit: int | None = None) -> list[AuditEntry]:
        self._enter()
        names = self._children(self.layout.audit, "audit")
        if limit is not None:
            names = names[-limit:] if limit > 0 else []
        found = self._get_many([f"{self.layout.audit}/{name}" for name in names], None)
        return [decoded(path, decode_entry, found[path]) for path in sorted(found)]

    # --- refused API requests --------------------------------------------------------------------

    @edge
    def record_refusals(self, summary: dict[str, Any]) -> None:
        self._enter(write=True)
        base = self.layout.dir("refusals")
        self._call(
            self._zk.create_async(
                f"{base}/entry-", dumps(summary), acl=self.acls.node, sequence=True
            ),
            "record refusals",
        )
        self._refusal_records += 1
        if self._refusal_records % PRUNE_EVERY == 1:
            with contextlib.suppress(CoordinatorError, ZookeeperError):
                names = self._children(base, None)
                for name in names[: max(0, len(names) - self.refusals_keep)]:
                    with contextlib.suppress(NoNodeError):
                        self._call(self._zk.delete_async(f"{base}/{name}"), "prune refusals")

    @edge
    def announce_shadow(self, name: str, summary: dict[str, Any]) -> None:
        self._enter()  # operators may: the shadows folder lets them create their own node
        path = self.layout.shadow(name)
        data = dumps(summary)
        try:
            self._call(
                self._zk.create_async(path, data, acl=self.acls.shadow_node, ephemeral=True),
                f"announce shadow {name}",
            )
        except NodeExistsError:
            _, stat = self._call(self._zk.get_async(path), f"read shadow {name}")
            if stat.ephemeralOwner != self._zk.client_id[0]:
                raise CoordinatorError(f"shadow {name!r} is announced by another session") from None
            self._call(self._zk.set_async(path, data), f"update shadow {name}")

    @edge
    def shadows(self) -> dict[str, dict[str, Any]]:
        self._enter()
        base = self.layout.dir("shadows")
        found: dict[str, dict[str, Any]] = {}
        for name in sorted(self._children(base, None)):
            got = self._get(f"{base}/{name}", None)
            if got is None:
                continue
            try:
                found[name] = dict(json_loads(got[0]))
            except (ValueError, TypeError):
                found[name] = {"unreadable": True}
        return found

    @edge
    def refusals(self, limit: int | None = None) -> list[dict[str, Any]]:
        self._enter()
        base = self.layout.dir("refusals")
        names = self._children(base, None)
        if limit is not None:
            names = names[-limit:] if limit > 0 else []
        found = self._get_many([f"{base}/{name}" for name in names], None)
        return [json.loads(found[path]) for path in sorted(found)]


def first_failure(results: list[Any]) -> tuple[int, Exception] | None:
    """The index and error of the operation that failed a transaction, if any."""
    for index, result in enumerate(results):
        if isinstance(result, Exception) and not isinstance(result, RolledBackError):
            return index, result
    return None


def json_loads(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
