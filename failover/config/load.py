"""Read a YAML file into a validated `Config`, or a list of every problem, each by its path."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from failover.config.model import Config
from failover.config.problem import Problem
from failover.config.rules import cross_field_problems


class ConfigError(Exception):
    """Raised with every problem found; `str()` lists them one per line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; relative file references resolve against its folder."""
    return parse_config(read_text(path), source=str(path), base=Path(path).resolve().parent)


MAX_FILE_BYTES = 256 * 1024  # our YAML files are a few KB; anything this big is a mistake
MAX_DEPTH = 40  # levels of nesting
MAX_ALIASES = 64  # *alias uses: a few are handy, many are a billion-laughs bomb
MAX_VALUES = 100_000  # values after aliases are expanded


def read_text(path: str | Path) -> str:
    """A regular file's text (at most `MAX_FILE_BYTES`), or a ConfigError naming the file and
    why it cannot be read. A FIFO or a device is refused without waiting on it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(
            str(path), [Problem("", f"cannot read the file: {_os_reason(exc)}")]
        ) from None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                why = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
                raise ConfigError(str(path), [Problem("", f"cannot read the file: {why}")])
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(
                str(path), [Problem("", f"cannot read the file: {_os_reason(exc)}")]
            ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            str(path), [Problem("", f"the file is larger than {MAX_FILE_BYTES} bytes")]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), [Problem("", f"cannot read the file: not UTF-8 (byte {exc.start})")]
        ) from None


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
    problems = cross_field_problems(config)
    if problems:
        raise ConfigError(source, problems)
    return config


class _Refused(yaml.YAMLError):
    pass


class BoundedLoader(yaml.SafeLoader):
    """The safe loader with bounds on nesting and on aliases, checked while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} aliases (*name)")
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(text: str, source: str) -> Any:
    """Parse bounded YAML: every mapping key a string, every number finite, at most
    `MAX_VALUES` values once aliases are expanded; else a ConfigError (never a hang)."""
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(source, [Problem("", f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        data = yaml.load(text, Loader=BoundedLoader)  # a SafeLoader
    except _Refused as exc:
        raise ConfigError(source, [Problem("", f"refused YAML: {exc}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem("", f"invalid YAML: {where}{what}")]) from None
    except (ValueError, OverflowError, TypeError, RecursionError) as exc:
        raise ConfigError(source, [Problem("", f"invalid YAML: {str(exc)[:200]}")]) from None
    problem = _shape_problem(data)
    if problem is not None:
        raise ConfigError(source, [problem])
    return data


def _shape_problem(data: Any) -> Problem | None:
    """The first non-string key or non-finite number, by path; or too many values."""
    seen = 0
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return Problem("", f"more than {MAX_VALUES} values (aliases expand to too much)")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return Problem(path, f"the key {_short(key)} is not a string (quote it)")
                stack.append((item, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            stack.extend((item, f"{path}.{index}") for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            return Problem(path, f"{value} is not a finite number")
    return None


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
        part
        for i, part in enumerate(location)
        if not (i and location[i - 1] in ("check", "steering") and part in _UNION_TAGS)
    ]


_UNION_TAGS = {"http", "https", "smtp", "postgres", "tcp", "icmp", "dns", "command", "bgp"}


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
            key: (
                str(base / value)
                if key.endswith(("_file", "_dir"))
                and isinstance(value, str)
                and not value.startswith("/")
                else resolve_files(value, base)
            )
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [resolve_files(item, base) for item in data]
    return data
