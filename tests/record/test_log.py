"""The recording on disk: faithful round trip, rotation, retention, bad files, a full disk."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.api.metrics import DaemonMetrics
from failover.config import Config
from failover.coord import Leadership
from failover.core import Engine, View
from failover.record.log import Recorder, recorded_files
from failover.record.read import LogError, cycles, headers, merged
from failover.record.replay import Mismatch, replay
from tests.core.world import example, observations
from tests.record.incident import Clock, record_incident


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl.gz"))


def test_a_recorded_incident_replays_faithfully(tmp_path: Path) -> None:
    config = example()
    recorder, _ = record_incident(config, tmp_path)
    assert recorder.ok and recorder.records == 120
    written = files(tmp_path)
    assert [p.name.split("+")[:2] for p in written] == [["shop", "dc1-a"]]
    found = list(cycles(written[0]))
    assert len(found) == 120 and all(c.header.cluster == "shop" for c in found)
    codes = {d[2] for c in found for d in c.decisions}
    assert {"hold_down", "failover", "promoted"} <= codes
    outcome = replay(merged(written))
    assert outcome.faithful and outcome.cycles == 120
    assert outcome.recorded.as_dict()["failovers"] == 1
    # the database came back 28 s after the switch: within FALSE_WITHIN_S, a false failover
    assert outcome.recorded.as_dict()["false_failovers"] == 1
    # every cycle line names the cluster and the config's fingerprint
    with gzip.open(written[0], "rt") as handle:
        lines = [json.loads(line) for line in handle]
    assert lines[0]["config"]["cluster"]["name"] == "shop"
    assert {(line["k"], line["f"]) for line in lines[1:]} == {("shop", lines[0]["f"])}


def rewrite(path: Path, change: dict[int, dict[str, object]]) -> None:
    with gzip.open(path, "rt") as handle:
        lines = [json.loads(line) for line in handle]
    for number, fields in change.items():
        lines[number - 1].update(fields)
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)


def test_a_decision_the_config_does_not_make_is_a_mismatch_naming_it(tmp_path: Path) -> None:
    record_incident(example(), tmp_path)
    path = files(tmp_path)[0]
    failover = next(c for c in cycles(path) if any(d[2] == "failover" for d in c.decisions))
    wrong = [
        [g, k, "hold_down" if c == "failover" else c, e, s] for g, k, c, e, s in failover.decisions
    ]
    rewrite(path, {failover.line: {"d": wrong}})
    with pytest.raises(
        Mismatch,
        match=rf"line {failover.line} .*decision 1 differs: "
        r"recorded web desired hold_down .*replayed web desired failover",
    ):
        replay(merged([path]))


def test_files_rotate_each_readable_and_the_oldest_go_beyond_the_size_limit(tmp_path: Path) -> None:
    recorder, _ = record_incident(
        example(), tmp_path, length_s=600, file_bytes=4096, max_bytes=16384, flush_s=0
    )
    written = files(tmp_path)
    assert len(written) >= 3
    assert sum(p.stat().st_size for p in written) <= 16384 + 4096 + 2048
    assert recorder.ok
    # the newest files still replay faithfully, each from its own first line
    outcome = replay(merged(written))
    assert outcome.cycles < 1200
    # the newest file may hold only its header (it rotated right after the last cycle)
    last = next(found[-1] for found in (list(cycles(p)) for p in reversed(written)) if found)
    assert last.now == pytest.approx(1_000_000.0 + 599.5)


def test_files_older_than_the_retention_are_removed(tmp_path: Path) -> None:
    config = example()
    record_incident(config, tmp_path, length_s=5)
    old = files(tmp_path)[0]
    os.utime(old, (time.time() - 10 * 86400, time.time() - 10 * 86400))
    recorder = Recorder(config, "dc1-a", tmp_path, keep_s=86400)
    assert recorder.prune(time.time()) == [old]
    assert recorded_files(tmp_path, "shop", "dc1-a") == []


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    from tests.operator.cluster import FAILOVER

    done = subprocess.run(
        [FAILOVER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        check=False,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def test_a_truncated_or_corrupt_log_is_a_clear_error(tmp_path: Path) -> None:
    record_incident(example(), tmp_path)
    path = files(tmp_path)[0]
    data = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    # cut in the middle of a record (at a flush point the file reads as unfinished)
    size = next(
        n
        for n in range(len(data) * 2 // 3, len(data))
        if not zlib.decompressobj(31).decompress(data[:n]).endswith(b"\n")
    )
    cut.write_bytes(data[:size])
    with pytest.raises(LogError, match=r"cut\.jsonl\.gz: (truncated|corrupt)"):
        list(cycles(cut))
    done = cli("replay", str(cut))
    assert done.returncode == 2 and "cut.jsonl.gz" in done.stderr
    at_a_line = tmp_path / "unfinished.jsonl.gz"
    size = next(
        n
        for n in range(len(data) // 2, len(data))
        if zlib.decompressobj(31).decompress(data[:n]).endswith(b"\n")
    )
    at_a_line.write_bytes(data[:size])
    done = cli("replay", str(at_a_line))
    assert done.returncode == 0 and "unfinished.jsonl.gz: unfinished" in done.stderr
    flipped = tmp_path / "flipped.jsonl.gz"
    flipped.write_bytes(data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])
    done = cli("replay", str(flipped))
    assert done.returncode == 2 and "flipped.jsonl.gz" in done.stderr, done.stderr
    text = tmp_path / "notes.jsonl.gz"
    text.write_text("hello\n")
    done = cli("replay", str(text))
    assert done.returncode == 2 and "corrupt gzip data" in done.stderr
    not_json = tmp_path / "bad.jsonl.gz"
    with gzip.open(not_json, "wb") as handle:
        handle.write(gzip.decompress(data).split(b"\n", 1)[0] + b"\n{not json\n")
    done = cli("replay", str(not_json))
    assert done.returncode == 2 and "bad.jsonl.gz: line 2: not JSON" in done.stderr


def test_a_log_of_another_cluster_or_a_config_that_does_not_fit(tmp_path: Path) -> None:
    config = example()
    other = config.model_copy(
        update={"cluster": config.cluster.model_copy(update={"name": "elsewhere"})}
    )
    record_incident(config, tmp_path / "a", length_s=5)
    record_incident(other, tmp_path / "b", length_s=5)
    mine, theirs = files(tmp_path / "a")[0], files(tmp_path / "b")[0]
    with pytest.raises(LogError, match="different clusters"):
        headers([mine, theirs])
    done = cli("replay", str(mine), str(theirs))
    assert done.returncode == 2 and "different clusters" in done.stderr
    candidate = tmp_path / "candidate.yaml"
    example_text = Path(__file__).parents[2].joinpath("examples", "two-dc.yaml").read_text()
    candidate.write_text(example_text.replace("name: shop", "name: elsewhere"))
    (tmp_path / "secrets").symlink_to(Path(__file__).parents[2] / "examples" / "secrets")
    done = cli("replay", str(mine), "--config", str(candidate))
    assert done.returncode == 2 and "cluster 'elsewhere'" in done.stderr, done.stderr
    done = cli("replay", str(tmp_path / "missing.jsonl.gz"))
    assert done.returncode == 2 and "missing.jsonl.gz: cannot read" in done.stderr


def cycle_inputs(config: Config, now: float) -> tuple[View, Leadership, Engine]:
    view = View(now, observations(config, now))
    return view, Leadership("dc1-a", 1), Engine(config)


def test_an_unwritable_directory_stops_recording_never_the_leader(tmp_path: Path) -> None:
    config = example()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    recorder, leader = record_incident(config, blocker / "records", length_s=20)
    assert not recorder.ok and "Not a directory" in recorder.error
    assert leader.last_step is not None  # every cycle ran
    metrics = DaemonMetrics("dc1-a", "dc1")
    metrics.recorder = recorder
    assert 'failover_recording_ok{instance="dc1-a",site="dc1"} 0.0' in metrics.exposition().decode()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_stops_recording_with_a_metric_and_it_resumes_later(tiny_disk: Path) -> None:
    config = example()
    recorder, leader = record_incident(config, tiny_disk, length_s=3600, flush_s=0, max_bytes=2**30)
    assert not recorder.ok and "No space left on device" in recorder.error
    assert leader.last_step is not None
    assert leader.last_step.states["web"].active == "dc2"  # the leader went on deciding
    metrics = DaemonMetrics("dc1-a", "dc1")
    metrics.recorder = recorder
    assert "failover_recording_ok" in metrics.exposition().decode()
    # space again: the next cycle after the retry delay records into a new file
    for path in files(tiny_disk):
        path.unlink()
    clock = Clock(2_000_000.0)
    recorder.clock = clock
    recorder.retry_s = 5.0
    recorder._retry_at = clock.now + 5.0
    view, leadership, engine = cycle_inputs(config, clock.now)
    recorder.record({}, view, (), engine.step({}, view), leadership)
    assert not recorder.ok and files(tiny_disk) == []  # not before the retry delay
    clock.now += 6.0
    view, leadership, engine = cycle_inputs(config, clock.now)
    recorder.record({}, view, (), engine.step({}, view), leadership)
    recorder.close()
    assert recorder.ok
    assert len(list(cycles(files(tiny_disk)[0]))) == 1


def test_two_leaders_files_replay_as_one_history_and_a_time_window(tmp_path: Path) -> None:
    """dc1-a leads, resigns during the outage; dc2-a takes over from the states dc1-a wrote
    and finishes the switch. Both files replay faithfully together, in time order."""
    from failover.coord import Member, MemoryCoordinator, MemoryStore
    from failover.daemon.leader import Leader
    from tests.core.world import everyone_sees

    config = example()
    clock = Clock()
    store = MemoryStore(clock)
    clients = {name: MemoryCoordinator(store, name) for name in ("dc1-a", "dc2-a")}
    for name, client in clients.items():
        client.register(Member(name, config.instances[name].site, "test", ("agent",), 0.0))
    store.tick()
    leaders = {}
    for name in clients:
        leaders[name] = Leader(config)
        leaders[name].recorder = Recorder(config, name, tmp_path, clock=clock)
    start = clock.now
    current = "dc1-a"
    leadership = clients[current].campaign()
    terms = set()
    while clock.now - start < 60:
        offset = clock.now - start
        if offset == 13.0:  # the switch began at 12 s; the new leader must finish it
            clients[current].resign()
            current = "dc2-a"
            store.tick()
            leadership = clients[current].campaign()
        assert leadership is not None
        terms.add(leadership.term)
        down = everyone_sees(config, "dc1", "db") if 10 <= offset < 40 else []
        clients[current].publish(observations(config, clock.now, down=down))
        store.tick()
        leaders[current].cycle(clients[current], leadership, clock.now)
        clock.now += 0.5
    for leader in leaders.values():
        leader.close()
    written = files(tmp_path)
    assert sorted(p.name.split("+")[1] for p in written) == ["dc1-a", "dc2-a"]
    found = list(merged(written))
    assert [c.now for c in found] == sorted(c.now for c in found) and len(found) == 120
    assert {c.term for c in found} == terms and len(terms) == 2
    outcome = replay(merged(written))
    assert outcome.faithful and outcome.cycles == 120
    codes = [d[2] for c in found if c.leader == "dc2-a" for d in c.decisions]
    assert "promoted" in codes
    window = replay(merged(written), start=start + 20, end=start + 29.9)
    assert window.cycles == 20 and window.first == start + 20
    done = cli(
        "replay",
        *map(str, written),
        "--from",
        str(start + 20),
        "--to",
        "1970-01-12T13:47:09.9Z",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cycles"] == 20
    done = cli("replay", *map(str, written), "--from", "yesterday")
    assert done.returncode == 2 and "--from 'yesterday'" in done.stderr


def test_operator_commands_are_recorded_and_replayed(tmp_path: Path) -> None:
    from failover.core.model import Command

    config = example()
    switch = Command("", "switchover", "alice", "maintenance", group="web", site="dc2")
    freeze = Command("", "freeze", "bob", "change window")
    record_incident(
        config, tmp_path, down_from=100, down_until=100, commands={5.0: switch, 45.0: freeze}
    )
    found = list(cycles(files(tmp_path)[0]))
    ran = [c.commands[0] for c in found if c.commands]
    assert [(c.kind, c.by) for c in ran] == [("switchover", "alice"), ("freeze", "bob")]
    assert found[-1].states["web"].active == "dc2" and found[-1].states["web"].frozen
    assert replay(merged(files(tmp_path))).faithful
    # a candidate follows the commands too: the switchover is an operator's, not a failover
    outcome = replay(merged(files(tmp_path)), config)
    assert outcome.differences == []
    assert outcome.candidate.as_dict()["switches"] == outcome.recorded.as_dict()["switches"]


def test_a_failover_from_a_site_that_stays_down_is_not_false(tmp_path: Path) -> None:
    record_incident(example(), tmp_path, down_until=1e9, length_s=60)
    summary = replay(merged(files(tmp_path))).recorded.as_dict()
    assert summary["failovers"] == 1 and summary["false_failovers"] == 0
