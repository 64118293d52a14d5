"""HAProxy in front of HTTP servers: the `lb` of a site.

It health-checks its backends (`GET /health`, every `inter_ms`); with every backend down it
answers 503 itself, which is what an `lb` check must notice.
"""

from __future__ import annotations

from pathlib import Path

from failover.testing.servers.base import ConfiguredServer

HAPROXY = "/usr/sbin/haproxy"


class HaproxyServer(ConfiguredServer):
    kind = "haproxy"

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
        self.backends = backends
        self.check_path = check_path
        self.inter_ms = inter_ms
        self.stats_socket = Path(workdir) / "haproxy.sock"
        super().__init__(workdir, address, port, netns=netns, name=name, config_name="haproxy.cfg")

    def argv(self) -> list[str]:
        return [HAPROXY, "-db", "-f", str(self.config_path)]

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
