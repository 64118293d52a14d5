"""The wheel is what an operator installs: `python -m build`, then `pip install` into a clean
virtualenv, gives a working `failover` (validate, the simulator, every command's help), and the
optional matplotlib is asked for by name when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover import __version__
from failover.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
# without PYTHONPATH (the checkout must not stand in for the installed package) or a venv
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, the `failover` script of a fresh virtualenv it was installed into)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: building writes failover.egg-info next to the sources
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=CLEAN_ENV,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = sorted((work / "dist").glob("failover-*.whl"))
    assert len(wheels) == 1, wheels
    venv.create(work / "venv", with_pip=True, clear=True)
    pip = subprocess.run(
        [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=CLEAN_ENV,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    yield wheels[0], work / "venv" / "bin" / "failover"


def run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def test_the_wheel_holds_the_package_and_no_tests(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "failover/cli/__init__.py" in names and "failover/core/policy.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]
    assert wheel.name == f"failover-{__version__}-py3-none-any.whl"


def test_version_and_validate_work_from_the_clean_venv(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, failover = installed
    version = run(failover, "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"failover, version {__version__}\n")
    ok = run(failover, "validate", str(ROOT / "examples" / "two-dc.yaml"), cwd=tmp_path)
    assert (ok.returncode, ok.stdout) == (0, "ok\n"), ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: {name: x}\n")
    refused = run(failover, "validate", str(bad), cwd=tmp_path)
    assert refused.returncode == 2 and "cluster.zookeeper" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_every_command_loads_from_the_clean_venv(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, failover = installed
    for name in COMMANDS:
        shown = run(failover, name, "--help", cwd=tmp_path)
        assert shown.returncode == 0 and "Usage: failover " + name in shown.stdout, (
            name,
            shown.stderr,
        )


def test_a_game_day_runs_and_the_report_asks_for_matplotlib(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, failover = installed
    playbook = str(ROOT / "playbooks" / "db-down.yaml")
    played = run(failover, "gameday", playbook, "--seed", "3", cwd=tmp_path)
    assert played.returncode == 0 and "PASSED" in played.stdout, played.stderr
    report = run(failover, "gameday", playbook, "--report", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 2
    assert "matplotlib" in report.stderr and "failover[report]" in report.stderr
    assert "Traceback" not in report.stderr
