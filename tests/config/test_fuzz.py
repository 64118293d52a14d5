"""Config fuzzing: mutated copies of examples/two-dc.yaml (values swapped for hostile ones,
keys dropped or renamed, types changed, text cut or garbled, YAML bombs) must each load or be
refused with a ConfigError (the CLI: exit 0 or 2, never a traceback), each case within a
bound a YAML bomb or a runaway check would blow (a case takes about 40 ms).

Seeded and deterministic: a failure names its case number; `FUZZ_SEED` varies the run.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from failover.cli import cli
from failover.config import ConfigError, load_config
from failover.config.secret_files import secret_file_problems

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = 1200
THROUGH_CLI = 60  # of them, also through `failover validate`
CASE_BOUND_S = 5.0  # a hang guard, not a speed target: the whole run's time varies with load
HOSTILE: list[Any] = [
    float("inf"),
    float("-inf"),
    float("nan"),
    -1,
    0,
    10**30,
    1e308,
    "",
    " ",
    "x" * 5000,
    [],
    {},
    None,
    True,
    "[]:8700",
    "0.0.0.0:0",
    "::1:53",
    "ns.example:53",
    "10.0.0.1:99999",
    "2001:db8::1",
    "/dev/zero",
    "../../etc/shadow",
    "\u0000",
    "\u202e",
    "\uff11\uff12",
    "*",
    "&a",
    {"a": {"b": {"c": {}}}},
    [[[]]],
    "30s",
    "1e999",
    ".inf",
    -0.0,
    2**63,
    "-5",
    "NaN",
]


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths(value, (*prefix, index))
    return found


def get_parent(data: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    for part in path[:-1]:
        data = data[part]
    return data, path[-1]


def mutate(document: dict[str, Any], text: str, rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:  # cut the text
        return text[: rng.randrange(len(text))]
    if kind == 1:  # garble some bytes
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            chars[rng.randrange(len(chars))] = rng.choice("{}[]:&*!|>'\"\t\n#%@`-? ")
        return "".join(chars)
    if kind == 2:  # a YAML bomb or deep nesting appended
        return text + rng.choice(
            [
                "bomb: &a [x, x, x, x, x, x, x, x]\n"
                + "".join(
                    f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 8) + "]\n"
                    for i in range(8)
                ),
                "deep: " + "[" * 3000 + "]" * 3000 + "\n",
                "1: numeric key\n",
                "? [a]\n: complex key\n",
                "big: " + "7" * 6000 + "\n",
            ]
        )
    data = copy.deepcopy(document)
    for _ in range(rng.randint(1, 4)):
        everything = paths(data)
        if not everything:
            break
        parent, key = get_parent(data, rng.choice(everything))
        action = rng.randrange(4)
        if action == 0:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif action == 1 and isinstance(parent, dict):
            del parent[key]
        elif action == 2 and isinstance(parent, dict):
            parent[rng.choice(["unknown", "api", "site", "zookeeper", 7])] = parent.pop(key)
        else:
            parent[key] = [parent[key]] if rng.random() < 0.5 else {"x": parent[key]}
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return text


def test_mutated_configs_load_or_are_refused_cleanly(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "secrets", tmp_path / "secrets")
    text = (EXAMPLES / "two-dc.yaml").read_text()
    document = yaml.safe_load(text)
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "14")))
    slowest = (0.0, -1)
    outcomes = {"loaded": 0, "refused": 0}
    runner = CliRunner()
    for case in range(CASES):
        path = tmp_path / f"case-{case}.yaml"
        path.write_text(mutate(document, text, rng))
        started = time.monotonic()
        try:
            config = load_config(path)
            secret_file_problems(config)
            outcomes["loaded"] += 1
        except ConfigError as exc:
            assert exc.problems and str(path) in str(exc), case
            outcomes["refused"] += 1
        except Exception as exc:  # anything else is a defect: name the case
            raise AssertionError(
                f"case {case} ({path.read_text()[:300]!r}): {type(exc).__name__}: {exc}"
            ) from exc
        if case < THROUGH_CLI:
            result = runner.invoke(cli, ["validate", str(path)])
            assert result.exit_code in (0, 2), (case, result.output)
            assert "Traceback" not in result.output, (case, result.output)
        slowest = max(slowest, (time.monotonic() - started, case))
        path.unlink()
    assert slowest[0] < CASE_BOUND_S, f"case {slowest[1]} took {slowest[0]:.1f} s"
    assert outcomes["refused"] > CASES // 2 and outcomes["loaded"] > 0, outcomes
