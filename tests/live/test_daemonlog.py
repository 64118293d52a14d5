"""The daemons' log lines in the live timeline: which ones, when, in the simulator's format."""

from __future__ import annotations

import json
from pathlib import Path

from failover.live.daemonlog import daemon_lines, offsets
from failover.live.record import History

START = 1_800_000_000.0


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _daemon(t: float, level: str, msg: str, logger: str = "failover.daemon") -> str:
    return json.dumps(
        {"at": _iso(START + t), "level": level, "instance": "dc1-a", "logger": logger, "msg": msg}
    )


def test_warnings_role_changes_and_the_supervisor_are_shown_from_the_run_s_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "daemon-dc1-a.log"
    log.write_text(_daemon(-30.0, "warning", "from an earlier run") + "\n")
    since = offsets({"dc1-a": log, "dc2-a": tmp_path / "missing.log"})
    lines = [
        _daemon(1.0, "info", "DNS for mail: verified at epoch 1", "failover.leader"),
        _daemon(2.0, "info", "leading with term 2"),
        _daemon(3.0, "warning", "Connection dropped: socket connection broken", "kazoo"),
        _daemon(3.5, "warning", "Connection dropped: socket connection broken", "kazoo"),
        _daemon(9.0, "warning", "Connection dropped: socket connection broken", "kazoo"),
        "web at dc1: primary -> held (verified)",  # the stop hook's output: no time
        json.dumps({"at": START + 10.25, "component": "supervisor", "event": "exited", "code": -9}),
        json.dumps({"at": START + 10.5, "component": "supervisor", "event": "ready"}),
        "{not json",
    ]
    with log.open("a") as out:
        out.write("\n".join(lines) + "\n")
    found = daemon_lines({"dc1-a": log, "dc2-a": tmp_path / "missing.log"}, since, START)
    assert [(round(t, 3), text) for t, text in found] == [
        (2.0, "dc1-a: leading with term 2"),
        (3.0, "dc1-a: warning: Connection dropped: socket connection broken"),
        (9.0, "dc1-a: warning: Connection dropped: socket connection broken"),
        (10.25, "dc1-a: supervisor: exited (code -9)"),
    ]
    history = History(START)
    for t, text in found:
        history.log(t, "daemon", text)
    assert history.lines[0] == "      2.000 daemon    dc1-a: leading with term 2"
