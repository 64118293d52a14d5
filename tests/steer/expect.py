"""Expected transcripts: what a steerer sent, compared line by line with a checked-in file."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def assert_transcript(lines: list[str], name: str) -> None:
    """FAILOVER_WRITE_TRANSCRIPTS=1 writes a missing file (review it before committing)."""
    path = TRANSCRIPTS / name
    if not path.exists() and os.environ.get("FAILOVER_WRITE_TRANSCRIPTS") == "1":
        path.write_text("".join(line + "\n" for line in lines))
    expected = (TRANSCRIPTS / name).read_text().splitlines()
    if lines != expected:
        diff = "\n".join(
            difflib.unified_diff(expected, lines, f"expected {name}", "sent", lineterm="")
        )
        raise AssertionError(f"the transcript differs from {name}:\n{diff}")
