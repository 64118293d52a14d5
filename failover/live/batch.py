"""Many live game-days on one lab per topology (`LiveStack.fresh()` between them)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.live.gameday import Score, gameday, unsupported
from failover.live.stack import LiveStack
from failover.sim.playbook import Playbook, load_playbook


def run_playbooks(
    paths: list[Path],
    seed: int = 1,
    say: Callable[[str], None] = lambda _: None,
    on_result: Callable[[Score], None] = lambda _: None,
    keep_logs: Path | None = None,
) -> list[Score]:
    """Every playbook, live where it can run: one lab per topology, fresh before each;
    with `keep_logs`, every daemon's, ZooKeeper server's and router's log after each run is
    copied to `keep_logs/<playbook>/`."""
    books: list[tuple[Path, Playbook]] = [(p, load_playbook(p)) for p in paths]
    results: list[Score] = []
    by_topology: dict[str, list[tuple[Path, Playbook]]] = {}
    for path, book in books:
        skipped = unsupported(book, str(path))
        if skipped is not None:
            results.append(skipped)
            on_result(skipped)
            continue
        by_topology.setdefault(book.topology.source, []).append((path, book))
    for group in by_topology.values():
        stack = LiveStack(group[0][1].topology)
        try:
            stack.up(say=say)
            for path, book in group:
                say(f"{path.name}: {book.spec.duration_s:g} s live")
                try:
                    result = gameday(book, str(path), seed, say, stack=stack)
                except Exception as exc:  # one broken run must not stop the others
                    result = Score(str(path), book.title, True, [f"error: {exc!r}"])
                if keep_logs is not None:
                    save_logs(stack, keep_logs / path.stem)
                results.append(result)
                on_result(result)
        finally:
            stack.down()
    return results


def row(result: Score) -> dict[str, Any]:
    return {
        "playbook": Path(result.playbook).name,
        "live": result.supported,
        "why_not": result.why_not,
        "passed_live": result.passed if result.live else None,
        "passed_predicted": result.predicted.passed if result.predicted else None,
        "matched": result.matched if result.live else None,
        "mismatched": [
            name for name, p, v in result.rows if p is None or v is None or p.passed != v.passed
        ]
        + [e.name for e in result.events if not e.matched],
        "wall_s": round(result.live.wall_s, 1) if result.live else None,
        "at": time.strftime("%H:%M:%S", time.gmtime()),
    }


def save_logs(stack: LiveStack, folder: Path) -> None:
    """A copy of every log under the lab's run dir (they are truncated by the next run)."""
    for log in stack.lab.run_dir.glob("**/*.log"):
        target = folder / log.relative_to(stack.lab.run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
