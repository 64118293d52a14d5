"""A small client for BIRD's control socket (the protocol `birdc` speaks), and route parsing.

Each reply line is `CODE-text` (more follows), `CODE text` (the last line) or ` text` (a
continuation of the previous code). Codes 0xxx end a successful reply, 8xxx/9xxx an error.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass


class BirdError(RuntimeError):
    """BIRD could not be reached (code 0) or refused a command (its reply code)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


NOT_FOUND = 8001  # "Network not found"


@dataclass(frozen=True, slots=True)
class BirdRoute:
    """One route of `show route ... all`: who it came from and its BGP attributes."""

    prefix: str
    protocol: str
    best: bool
    as_path: tuple[int, ...] = ()
    next_hop: str = ""
    metric: int | None = None  # krt_metric, for routes learned from a kernel table

    def describe(self) -> str:
        path = " ".join(str(asn) for asn in self.as_path) or "-"
        return f"{self.prefix} from {self.protocol} path [{path}]{' best' if self.best else ''}"


def bird_command(socket_path: str, command: str, timeout_s: float = 2.0) -> list[tuple[int, str]]:
    """Send one command; return the reply's (code, text) lines. Raise BirdError on failure."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(socket_path)
            reader = sock.makefile("r", encoding="utf-8", errors="replace")
            _read_reply(reader)  # the greeting
            sock.sendall(command.encode() + b"\n")
            lines = _read_reply(reader)
    except OSError as exc:
        raise BirdError(f"BIRD at {socket_path}: {exc.strerror or exc}") from None
    code, text = lines[-1]
    if code >= 8000:
        raise BirdError(f"BIRD at {socket_path} refused {command!r}: {text}", code)
    return lines


def _read_reply(reader: object) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    code = 0
    for raw in reader:  # type: ignore[attr-defined]
        line = raw.rstrip("\n")
        if line.startswith(" "):
            lines.append((code, line[1:]))
            continue
        if len(line) < 5 or not line[:4].isdigit():
            raise OSError(f"unexpected reply line {line!r}")
        code = int(line[:4])
        lines.append((code, line[5:]))
        if line[4] == " ":
            return lines
    raise OSError("connection closed in the middle of a reply")


_ROUTE = re.compile(
    r"^(?P<prefix>\S+/\d+)?\s+(?P<kind>unicast|blackhole|unreachable|prohibited)"
    r"\s+\[(?P<proto>\S+)\s[^\]]*\](?P<best>\s\*)?"
)


def show_routes(
    socket_path: str, prefix: str, export: str | None = None, timeout_s: float = 2.0
) -> list[BirdRoute]:
    """Every route BIRD holds for exactly `prefix` (best first as BIRD prints it); with
    `export`, the routes it exports to that protocol, as its export filter leaves them."""
    command = f"show route for {prefix}{f' export {export}' if export else ''} all"
    try:
        lines = bird_command(socket_path, command, timeout_s)
    except BirdError as exc:
        if exc.code == NOT_FOUND:
            return []
        raise
    return parse_routes(lines, prefix)


def parse_routes(lines: list[tuple[int, str]], prefix: str) -> list[BirdRoute]:
    routes: list[BirdRoute] = []
    current: dict[str, object] | None = None
    net = ""
    for _code, text in lines:
        match = _ROUTE.match(text)
        if match:
            if current is not None:
                routes.append(BirdRoute(**current))  # type: ignore[arg-type]
            net = match.group("prefix") or net
            current = {
                "prefix": net,
                "protocol": match.group("proto"),
                "best": bool(match.group("best")),
            }
            continue
        if current is None:
            continue
        key, _, value = text.strip().partition(":")
        value = value.strip()
        if key == "BGP.as_path":
            current["as_path"] = tuple(int(part) for part in value.split() if part.isdigit())
        elif key == "BGP.next_hop":
            current["next_hop"] = value.split()[0] if value else ""
        elif key == "Kernel.metric":
            current["metric"] = int(value.split()[0]) if value.split() else None
    if current is not None:
        routes.append(BirdRoute(**current))  # type: ignore[arg-type]
    return [route for route in routes if route.prefix == prefix]


def protocol_state(socket_path: str, protocol: str, timeout_s: float = 2.0) -> str:
    """`Established`, `Active`, ... for a BGP protocol; `up`/`down` for others."""
    lines = bird_command(socket_path, f"show protocols {protocol}", timeout_s)
    for code, text in lines:
        if code == 1002 and text.split() and text.split()[0] == protocol:
            fields = text.split()  # name proto table state since [info...]
            return fields[5] if len(fields) > 5 else fields[3]
    raise BirdError(f"BIRD at {socket_path} has no protocol {protocol!r}")


def protocol_info(socket_path: str, protocol: str, timeout_s: float = 2.0) -> dict[str, str]:
    """`show protocols all NAME` as a mapping of its `Key: value` lines (e.g. `Local AS`)."""
    info: dict[str, str] = {}
    for _code, text in bird_command(socket_path, f"show protocols all {protocol}", timeout_s):
        key, sep, value = text.strip().partition(":")
        if sep and key and key not in info:
            info[key] = value.strip()
    return info
