"""Read a YAML file into a validated `Config`, or a list of every problem, each by its path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from failover.config.model import Config
from failover.config.rules import cross_field_problems


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Raised with every problem found; `str()` lists them one per line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; relative file references resolve against its folder."""
    return parse_config(read_text(path), source=str(path), base=Path(path).resolve().parent)


def read_text(path: str | Path) -> str:
    """A file's text, or a ConfigError naming the file and why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem("", f"cannot read the file: {_os_reason(exc)}")
        raise ConfigError(str(path), [problem]) from None


def load_mapping(text: str, source: str) -> dict[str, Any]:
    """YAML text whose top level must be a mapping (every file of ours is one)."""
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the top level must be a mapping")])
    return data


def parse_config(text: str, source: str = "<config>", base: Path | None = None) -> Config:
    data = load_mapping(text, source)
    if base is not None:
        data = resolve_files(data, base)
    try:
        config = Config.model_validate(data, context={"defer_cross_field_rules": True})
    except ValidationError as exc:
        raise ConfigError(source, pydantic_problems(exc)) from None
    problems = [_split(text) for text in cross_field_problems(config)]
    if problems:
        raise ConfigError(source, problems)
    return config


# libyaml's parser when PyYAML has it (ten times faster), with the same safe constructor
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        pass  # parsed again below: the pure-Python parser words its errors better
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem("", f"invalid YAML: {where}{what}")]) from None


def pydantic_problems(exc: ValidationError) -> list[Problem]:
    """One `Problem` per pydantic error, its path dotted, the offending value quoted."""
    problems = []
    for error in exc.errors(include_url=False):
        location = _without_union_tags([str(part) for part in error["loc"]])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] != "missing" and not isinstance(error.get("input", {}), dict):
            message = f"{message} (got {_short(error['input'])})"
        problems.append(Problem(".".join(location), message))
    return problems


def _without_union_tags(location: list[str]) -> list[str]:
    """pydantic names the chosen union member after `check`/`steering`; it is not a key."""
    return [
        part for i, part in enumerate(location)
        if not (i and location[i - 1] in ("check", "steering") and part in _UNION_TAGS)
    ]


_UNION_TAGS = {"http", "https", "smtp", "postgres", "tcp", "icmp", "dns", "command", "bgp"}


def _split(text: str) -> Problem:
    path, _, message = text.partition(": ")
    return Problem(path, message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _os_reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def resolve_files(data: Any, base: Path) -> Any:
    """Every relative `*_file` or `*_dir` reference made absolute against `base` (the
    config's folder)."""
    if isinstance(data, dict):
        return {
            key: (str(base / value) if key.endswith(("_file", "_dir")) and isinstance(value, str)
                  and not value.startswith("/") else resolve_files(value, base))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [resolve_files(item, base) for item in data]
    return data
