"""The README's shell blocks work: each `sh` block runs (with `failover` being this checkout),
except blocks marked `<!-- needs root ... -->`, whose commands must at least exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from failover.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!--(?P<mark>[^>]*)-->\n)?```sh\n(?P<body>.*?)```", re.S)


def blocks() -> list[tuple[bool, str]]:
    """(needs root, body) of every ```sh block."""
    found = [
        (bool(m.group("mark") and "needs root" in m.group("mark")), m.group("body"))
        for m in BLOCK.finditer(README.read_text(encoding="utf-8"))
    ]
    assert found, "the README has no sh block"
    return found


def commands(body: str) -> list[list[str]]:
    return [
        shlex.split(line, comments=True)
        for line in body.splitlines()
        if shlex.split(line, comments=True)
    ]


def test_both_kinds_of_block_are_there() -> None:
    kinds = {root for root, _ in blocks()}
    assert kinds == {True, False}


@pytest.mark.parametrize(
    "body", [b for root, b in blocks() if not root], ids=lambda body: body.splitlines()[0][:40]
)
def test_a_block_runs(body: str, tmp_path: Path) -> None:
    """Run the block in bash -e from the repository root, `failover` being this checkout."""
    shim = tmp_path / "bin" / "failover"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m failover "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(tmp_path),
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", body],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_blocks_that_need_root_name_real_commands_and_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for root, body in blocks():
        if not root:
            continue
        for words in commands(body):
            if words[0] == "make":
                assert set(words[1:]) <= targets, words
            elif words[0] == "failover" or words[0].endswith("/failover"):
                assert words[1] in COMMANDS, words
