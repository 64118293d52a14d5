"""A minimal daemon-like process on the coordinator, for fault tests, the lab and benchmarks.

`python -m failover.testing.contender --hosts ... --instance a` registers, campaigns every
cycle, and as leader writes the desired state of one group (fenced) and executes operator
commands exactly once (effect, result and audit in one fenced commit). It prints one JSON
object per event on stdout, with `t` on the system-wide monotonic clock:

    {"event": "lead", "term": 3, ...}   {"event": "follow"}   {"event": "session", "state": ...}
    {"event": "write", "ok": true, "term": 3, "epoch": 7}   {"event": "refused", "error": ...}
    {"event": "command-start", "id": ...}   {"event": "command-done", "id": ...}

SIGTERM: resign and close the session (a clean stop), then exit 0. `Contender` (below) runs
one such process and reads its events.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.coord.base import (
    AuditRecord,
    CommandResult,
    CoordinatorError,
    Leadership,
    Member,
)
from failover.coord.zklayout import read_identity
from failover.core.model import GroupState
from failover.testing.servers.process import Process


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def run(args: argparse.Namespace) -> int:
    from failover.coord.zookeeper import ZooKeeperCoordinator

    coordinator = ZooKeeperCoordinator(
        args.hosts,
        cluster=args.cluster,
        instance=args.instance,
        chroot=args.chroot,
        session_timeout_s=args.session_timeout_s,
        daemon=read_identity(args.daemon_auth, "daemon") if args.daemon_auth else None,
        operator=read_identity(args.operator_auth, "operator") if args.operator_auth else None,
    )
    stop, wake = threading.Event(), threading.Event()

    def on_term(*_: object) -> None:
        stop.set()
        wake.set()

    def on_wake(topic: str) -> None:
        if topic == "session":
            emit("session", state=coordinator.session_state())
        wake.set()  # watches only wake the loop

    signal.signal(signal.SIGTERM, on_term)
    coordinator.subscribe(on_wake)
    while not stop.is_set():
        try:
            coordinator.connect(timeout_s=10.0)
            break
        except CoordinatorError as exc:
            emit("error", error=str(exc))
    member = Member(args.instance, args.site, "contender", ("leader",), time.time())
    held: Leadership | None = None  # the last leadership won (kept on purpose with --stale)
    leading = False
    next_write = 0.0
    last_error = ""
    joined: int | None = None
    while not stop.is_set():
        wake.clear()
        try:
            current = coordinator.leadership()
            if current is None and leading:
                leading = False
                emit(
                    "deposed", term=held.term if held else None, session=coordinator.session_state()
                )
            writer = held if args.stale else current
            if writer is not None and args.write_every_s > 0 and time.monotonic() >= next_write:
                next_write = time.monotonic() + args.write_every_s
                _write(coordinator, writer, args)
            coordinator.register(member)
            won = coordinator.campaign()
            if coordinator.session_id != joined:
                joined = coordinator.session_id
                emit("joined", leading=won is not None)
            if won is not None and not leading:
                leading, held = True, won
                emit("lead", term=won.term)
                next_write = 0.0
            elif won is None and leading:
                leading = False
                emit("follow")
            if won is not None and args.commands:
                _commands(coordinator, won, args, stop.is_set)
            last_error = ""
        except CoordinatorError as exc:
            text = f"{type(exc).__name__}: {exc}"
            if text != last_error:
                emit("error", error=text)
            last_error = text
        wake.wait(args.interval_s)
    with contextlib.suppress(CoordinatorError):
        coordinator.resign()
    coordinator.close()
    emit("stopped")
    return 0


def _write(coordinator: Any, writer: Leadership, args: argparse.Namespace) -> None:
    try:
        state, version = coordinator.desired(args.group)
        epoch = (state.epoch if state else 0) + 1
        new = GroupState(
            args.group,
            active=args.site,
            epoch=epoch,
            by=args.instance,
            reason=f"term {writer.term}",
            changed_at=time.time(),
        )
        coordinator.write_desired(writer, new, version)
        emit("write", ok=True, term=writer.term, epoch=epoch)
    except CoordinatorError as exc:
        emit("refused", term=writer.term, error=type(exc).__name__, detail=str(exc))


def _commands(
    coordinator: Any, leader: Leadership, args: argparse.Namespace, stopping: Callable[[], bool]
) -> None:
    for command in coordinator.pending_commands():
        emit("command-start", id=command.id)
        if args.command_delay_s:
            time.sleep(args.command_delay_s)  # the window in which a test kills the leader
        state, version = coordinator.desired(args.group)
        epoch = (state.epoch if state else 0) + 1
        new = GroupState(
            args.group,
            active=command.site or args.site,
            epoch=epoch,
            by=command.by,
            reason=f"{command.kind} {command.id}",
            code="switchover",
        )
        result = CommandResult(
            command.id,
            True,
            "done",
            f"executed by {args.instance}",
            time.time(),
            args.instance,
            leader.term,
        )
        record = AuditRecord(
            "command", {"id": command.id, "by": args.instance, "epoch": epoch}, time.time()
        )
        coordinator.commit(leader, desired=[(new, version)], results=[result], audit=[record])
        emit("command-done", id=command.id, epoch=epoch)
        if stopping():
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--cluster", default="bench")
    parser.add_argument("--chroot", default="/failover")
    parser.add_argument("--instance", required=True)
    parser.add_argument("--site", default="dc1")
    parser.add_argument("--group", default="web")
    parser.add_argument("--session-timeout-s", type=float, default=1.0)
    parser.add_argument("--daemon-auth")
    parser.add_argument("--operator-auth")
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--write-every-s", type=float, default=0.0)
    parser.add_argument(
        "--stale",
        action="store_true",
        help="keep writing with the last leadership won (tests the fence)",
    )
    parser.add_argument("--commands", action="store_true")
    parser.add_argument("--command-delay-s", type=float, default=0.0)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)  # events only, no chatter
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 130


class Contender:
    """One contender process, started with a known PID; its events are read from its log."""

    def __init__(self, workdir: Path, instance: str, hosts: str, *options: str) -> None:
        self.instance = instance
        argv = [
            sys.executable,
            "-m",
            "failover.testing.contender",
            "--hosts",
            hosts,
            "--instance",
            instance,
            *options,
        ]
        self.log_path = workdir / f"contender-{instance}.log"
        self.process = Process(f"contender-{instance}", argv, log_path=self.log_path)

    def start(self) -> Contender:
        self.process.start()
        return self

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return found
        for line in lines:
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if kind is None or event.get("event") == kind:
                    found.append(event)
        return found

    def leading(self) -> bool:
        """Whether its latest leadership event says it leads."""
        marks = [e for e in self.events() if e["event"] in ("lead", "follow", "deposed")]
        return bool(marks) and marks[-1]["event"] == "lead" and self.process.alive

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    def stop(self) -> None:
        self.process.stop(timeout_s=5.0)


if __name__ == "__main__":
    raise SystemExit(main())
