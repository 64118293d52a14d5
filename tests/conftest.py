"""Shared by every test package: when a test fails, its report shows what the real servers it
used have logged, so that a failure on CI can be read without running it again.

A fixture's value takes part by what it has (one rule for all, no per-package copy):
- `describe()` and `log_tails()` (the lab's `Stack`): what it shows now, and every log's end;
- `contenders` (coordinator fault tests): each contender process's log tail;
- a callable `logs()` (ZooKeeper ensembles and harnesses, the operator tests' `Cluster`).
Each report also keeps `item.rep_<when>` for fixtures that act on their test's outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest


def sections(name: str, value: Any) -> list[tuple[str, Callable[[], str]]]:
    """The report sections (title, how to read it) for one fixture value; none for most."""
    if callable(getattr(value, "describe", None)) and callable(getattr(value, "log_tails", None)):
        return [(f"{name}: now", value.describe), (f"{name}: logs", value.log_tails)]
    found: list[tuple[str, Callable[[], str]]] = [
        (f"{name}: contender {c.instance}", c.log_tail) for c in getattr(value, "contenders", [])
    ]
    logs = getattr(value, "logs", None)
    if callable(logs):
        found.append((f"{name}: logs", logs))
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.when not in ("setup", "call") or not report.failed:
        return report
    seen: set[int] = set()
    for name, value in getattr(item, "funcargs", {}).items():
        if id(value) in seen:  # one object under two fixture names (`cluster`, `steady`)
            continue
        seen.add(id(value))
        for title, read in sections(name, value):
            try:
                text = read()
            except Exception as exc:  # a broken report must not hide the failure itself
                text = f"cannot read it: {type(exc).__name__}: {exc}"
            report.sections.append((title, text))
    return report
