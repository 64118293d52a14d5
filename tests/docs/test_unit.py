"""docs/failover@.service: systemd accepts it as written, and it agrees with the config's
defaults and the commands it runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from failover.cli import COMMANDS
from failover.config.model import DaemonOptions

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "docs" / "failover@.service"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing (Debian's systemd package)"
    # the unit names /usr/local/bin/failover, as installed; verify needs it to exist
    installed = Path(sys.executable).parent / "failover"
    copy = tmp_path / "failover@.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/failover", str(installed)))
    done = subprocess.run(
        [tool, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_unit_agrees_with_the_config_and_the_cli() -> None:
    text = UNIT.read_text()
    watchdog = re.search(r"^WatchdogSec=(\d+)s$", text, re.M)
    assert watchdog is not None
    assert float(watchdog.group(1)) == DaemonOptions().watchdog_s
    assert "Type=notify" in text and "NotifyAccess=main" in text
    for line in re.findall(r"^Exec\w+=/usr/local/bin/failover (\w+)", text, re.M):
        assert line in COMMANDS
    assert re.findall(r"^Exec\w+=/usr/local/bin/failover (\w+)", text, re.M) == ["run", "demote"]
