"""HAProxy in front of HTTP servers: the `lb` of a site.

It health-checks its backends (`GET /health`, every `inter_ms`); with every backend down it
answers 503 itself, which is what an `lb` check must notice.
"""

from __future__ import annotations

from pathlib import Path

from failover.servers.base import listening, pick_port, url_host, wait_ready
from failover.servers.process import Process

HAPROXY = "/usr/sbin/haproxy"


class HaproxyServer:
    def __init__(
        self,
        workdir: str | Path,
        backends: list[str],
        address: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        name: str = "lb",
        check_path: str = "/health",
        inter_ms: int = 200,
    ) -> None:
        if not backends:
            raise ValueError("HAProxy needs at least one backend")
        self.workdir = Path(workdir)
        self.backends = backends
        self.address = address
        self.port = pick_port(address, port, netns)
        self.netns = netns
        self.name = name
        self.check_path = check_path
        self.inter_ms = inter_ms
        self.config_path = self.workdir / "haproxy.cfg"
        self.stats_socket = self.workdir / "haproxy.sock"
        self.process = Process(
            f"haproxy {name}", [HAPROXY, "-db", "-f", str(self.config_path)],
            log_path=self.workdir / "haproxy.log", netns=netns,
        )

    @property
    def endpoint(self) -> str:
        return f"{url_host(self.address)}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def config(self) -> str:
        servers = "".join(
            f"  server s{i} {backend} check inter {self.inter_ms}ms fall 2 rise 2\n"
            for i, backend in enumerate(self.backends)
        )
        return f"""global
  maxconn 4096
  stats socket {self.stats_socket} mode 600 level admin

defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s

frontend {self.name}
  bind {self.endpoint}
  default_backend {self.name}_servers

backend {self.name}_servers
  balance roundrobin
  option httpchk GET {self.check_path}
  http-check expect status 200
{servers}"""

    def start(self, timeout_s: float = 10.0) -> HaproxyServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        self.process.start()
        wait_ready(self.process, lambda: listening(self.address, self.port, self.netns),
                   timeout_s, "listening")
        return self

    def stop(self) -> None:
        self.process.stop()
