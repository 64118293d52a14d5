"""The core stays pure: no module under failover/core imports I/O, threads or clocks."""

from __future__ import annotations

import ast
from pathlib import Path

import failover.core

FORBIDDEN = {
    "socket",
    "asyncio",
    "kazoo",
    "subprocess",
    "threading",
    "time",
    "os",
    "random",
    "select",
    "selectors",
    "multiprocessing",
    "datetime",
    "pyroute2",
    "dns",
    "aiohttp",
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_io_modules() -> None:
    root = Path(failover.core.__file__).parent
    files = sorted(root.glob("*.py"))
    assert len(files) >= 6
    offenders = {str(p.name): sorted(imported_modules(p) & FORBIDDEN) for p in files}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_core_imports_nothing_of_ours_but_config_and_core() -> None:
    root = Path(failover.core.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("failover.")
            ):
                assert node.module.split(".")[1] in ("core", "config"), (path.name, node.module)


def test_the_check_catches_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\n")
    assert imported_modules(bad) & FORBIDDEN == {"time", "asyncio"}
