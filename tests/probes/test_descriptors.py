"""Out of file descriptors, an observer knows nothing about its targets: `unknown`, never
`down` (issue 14, finding 4: connections to the API used up the descriptors the probes need).

A child process with a low RLIMIT_NOFILE uses up its descriptors, then probes a real HTTP
server over TCP and over HTTP; what it prints is the verdicts it reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from failover.testing.servers.http import HttpServer

CHILD = r"""
import asyncio, json, resource, sys
from failover.config.model import HttpCheck, TcpCheck
from failover.probes import ProbeScheduler, ProbeTarget

endpoint = sys.argv[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (96, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
options = {"interval_s": 0.1, "timeout_s": 0.08, "rise": 1, "fall": 2}
targets = [
    ProbeTarget("dc1", "tcp", "app", endpoint, TcpCheck.model_validate({"type": "tcp", **options})),
    ProbeTarget("dc1", "http", "app", endpoint,
                HttpCheck.model_validate({"type": "http", "path": "/health", **options})),
]
seen = {}
hoard = []
hoarding = False

def grab():
    try:
        while True:
            hoard.append(open("/dev/null"))
    except OSError:
        pass

def on_result(key, state, result):
    seen.setdefault(key, []).append([state.verdict, result.reason])
    if hoarding:  # whatever a finished probe gave back is taken at once
        grab()

async def main():
    global hoarding
    scheduler = ProbeScheduler(targets, on_result, freeze_gc=False)
    task = asyncio.create_task(scheduler.run())
    for _ in range(200):  # event loop, selector and a first `up` of each target, then hoard
        if len(seen) == 2 and all(["up"] in [v[:1] for v in h] for h in seen.values()):
            break
        await asyncio.sleep(0.05)
    hoarding = True
    grab()
    await asyncio.sleep(1.0)
    hoarding = False
    for item in hoard:
        item.close()
    scheduler.stop()
    await asyncio.wait_for(task, 5)

asyncio.run(main())
print(json.dumps(seen))
"""


def test_an_observer_out_of_descriptors_says_unknown_not_down(tmp_path: Path) -> None:
    server = HttpServer(tmp_path / "http", name="app").start()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, server.endpoint],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path.cwd()))},
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen) == 2
    for key, history in seen.items():
        verdicts = [verdict for verdict, _ in history]
        assert "up" in verdicts, (key, history)
        assert "down" not in verdicts, (key, history)
        assert verdicts[-1] == "unknown", (key, history[-3:])
        assert "this observer cannot probe" in history[-1][1], (key, history[-1])
