"""The world's parts as plain state: services, links, daemons, and the faults' ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Service:
    """One service at one site: the faults acting on it decide whether and how it serves."""

    site: str
    name: str
    down: int = 0
    flapping: dict[int, bool] = field(default_factory=dict)  # fault id -> currently up
    slow_s: dict[int, float] = field(default_factory=dict)
    partial: dict[int, float] = field(default_factory=dict)

    def serving(self) -> bool:
        return self.down == 0 and all(self.flapping.values())

    def latency_s(self) -> float:
        return sum(self.slow_s.values())

    def fail_p(self) -> float:
        return max(self.partial.values(), default=0.0)

    def faulty(self) -> bool:
        return bool(self.down or self.flapping or self.slow_s or self.partial)


@dataclass(slots=True)
class Link:
    """One direction between two locations."""

    latency_s: float
    cut: int = 0
    extra_s: dict[int, float] = field(default_factory=dict)
    loss: dict[int, float] = field(default_factory=dict)

    def delay_s(self) -> float:
        return self.latency_s + sum(self.extra_s.values())

    def loss_p(self) -> float:
        return max(self.loss.values(), default=0.0)


@dataclass(slots=True)
class Daemon:
    name: str
    site: str
    roles: tuple[str, ...]
    alive: bool = True
    paused: bool = False
    gen: int = 0  # incarnation: events of an older one are dropped
    connected: bool = False  # its process's session is connected
    paused_at: float | None = None
    down_until_power: bool = False  # powered off: the supervisor cannot restart it
    held_down: int = 0  # crash faults keeping it down

    @property
    def running(self) -> bool:
        return self.alive and not self.paused


@dataclass(slots=True)
class FaultRecord:
    """Ground truth of one fault, for invariants, coverage and reports."""

    id: int
    kind: str
    label: str
    start: float
    end: float | None = None
    sites: tuple[str, ...] = ()  # the serving sites whose service to clients it hurts
    inter_site_cut: bool = False  # a cut between the two serving sites only
    places: tuple[str, ...] = ()  # every site it touches in any way (links, servers, daemons)
    service: str | None = None  # the service a service fault acts on
