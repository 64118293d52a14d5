"""The leader's read of every group's desired and applied state, cached behind watches.

A leader of a hundred groups read 400 nodes a cycle (a desired state, an applied folder and
two applied nodes per group): 80 ms of kazoo's per-request work even pipelined, though nearly
nothing had changed. Here every group read arms a watch of its own on those nodes; a watch
that fires marks its group stale, and only stale groups are read again (in one pipelined
batch). What this client writes itself (a commit, a report of applied state) marks the group
stale at once, before its watch event arrives; any change of session forgets everything (a
new session has no watches). A group is marked fresh before it is read, so a change that lands
during the read fires the new watch and is read next time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import WatchedEvent

from failover.coord.base import NO_NODE, Topic
from failover.coord.zklayout import Layout
from failover.core.model import Applied, GroupState

if TYPE_CHECKING:
    from kazoo.client import KazooClient

GroupRead = tuple[GroupState | None, int, dict[str, Applied]]
Decode = Callable[[str, bytes], Any]


class GroupCache:
    def __init__(
        self,
        zk: KazooClient,
        layout: Layout,
        call: Callable[[Any, str], Any],
        wake: Callable[[Topic], None],
    ) -> None:
        self.zk = zk
        self.layout = layout
        self.call = call
        self.wake = wake
        self.lock = threading.Lock()
        self.read: dict[str, GroupRead] = {}
        self.stale: set[str] = set()
        self.reads = 0  # groups read from ZooKeeper (not from the cache), for tests

    def forget(self, groups: Iterable[str] | None = None) -> None:
        """Read these groups (None: all) again next time."""
        with self.lock:
            if groups is None:
                self.read.clear()
                self.stale.clear()
            else:
                self.stale.update(groups)

    def _watch(self, event: WatchedEvent) -> None:
        """kazoo's thread: mark the group stale and wake the daemon; no I/O."""
        parts = (event.path or "").removeprefix(self.layout.base + "/").split("/")
        if len(parts) >= 2 and parts[0] in ("state", "applied"):
            with self.lock:
                self.stale.add(parts[1])
            self.wake("desired" if parts[0] == "state" else "applied")

    def groups(
        self, names: Sequence[str], decode_state: Decode, decode_applied: Decode
    ) -> dict[str, GroupRead]:
        with self.lock:
            todo = [name for name in names if name not in self.read or name in self.stale]
            self.stale.difference_update(todo)
        try:
            fresh = self._read(todo, decode_state, decode_applied)
        except BaseException:
            self.forget(todo)
            raise
        with self.lock:
            self.read.update(fresh)
            self.reads += len(fresh)
            return {name: self.read[name] if name in self.read else fresh[name] for name in names}

    def _read(
        self, names: list[str], decode_state: Decode, decode_applied: Decode
    ) -> dict[str, GroupRead]:
        if not names:
            return {}
        watch = self._watch
        states = {name: self.zk.get_async(self.layout.state(name), watch=watch) for name in names}
        dirs = {
            name: self.zk.get_children_async(self.layout.applied_dir(name), watch=watch)
            for name in names
        }
        absent = []  # arm a watch on the creation of what is not there yet
        desired: dict[str, tuple[GroupState | None, int]] = {}
        for name, pending in states.items():
            path = self.layout.state(name)
            try:
                data, stat = self.call(pending, f"read {path}")
            except NoNodeError:
                desired[name] = (None, NO_NODE)
                absent.append((path, self.zk.exists_async(path, watch=watch)))
                continue
            desired[name] = (decode_state(path, data), int(stat.version))
        sites: dict[str, list[str]] = {}
        for name, pending in dirs.items():
            path = self.layout.applied_dir(name)
            try:
                sites[name] = sorted(self.call(pending, f"list {path}"))
            except NoNodeError:
                sites[name] = []
                absent.append((path, self.zk.exists_async(path, watch=watch)))
        for path, pending in absent:
            self.call(pending, f"watch {path}")
        nodes = {
            self.layout.applied(name, site): self.zk.get_async(
                self.layout.applied(name, site), watch=watch
            )
            for name in names
            for site in sites[name]
        }
        found: dict[str, bytes] = {}
        for path, pending in nodes.items():
            try:
                found[path] = self.call(pending, f"read {path}")[0]
            except NoNodeError:  # gone between the listing and the read: its folder's watch fired
                continue
        out: dict[str, GroupRead] = {}
        for name in names:
            values: list[Applied] = [
                decode_applied(path, found[path])
                for path in (self.layout.applied(name, site) for site in sites[name])
                if path in found
            ]
            applied = {value.site: value for value in sorted(values, key=lambda v: v.site)}
            out[name] = (*desired[name], applied)
        return out
