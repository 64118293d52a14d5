"""The systemd unit runs the daemon with least privilege (issue 14, finding 12: it ran as root
with only NoNewPrivileges): systemd's own analysis of the unit, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "docs" / "failover@.service"
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_unit_is_valid_and_its_exposure_is_low(tmp_path: Path) -> None:
    unit = tmp_path / UNIT.name
    shutil.copy(UNIT, unit)
    verify = subprocess.run(
        [str(ANALYZE), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]  # not installed here
    assert problems == []
    security = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert found is not None, security.stdout + security.stderr
    assert float(found.group(1)) < 3.0, security.stdout
    text = UNIT.read_text()
    assert re.search(r"^User=(?!root)\w+", text, re.MULTILINE)
    assert "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n" in text
