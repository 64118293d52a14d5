"""nginx as a fast native HTTP server (benchmarks, the lab's app and lb sites).

`/health` answers 200 `ok NAME`, or 503 while the `down` file exists (`set_down(True)`);
every other path answers 200 as well, so a benchmark can hit any URL.
"""

from __future__ import annotations

from pathlib import Path

from failover.testing.servers.base import ConfiguredServer

NGINX = "/usr/sbin/nginx"


class NginxServer(ConfiguredServer):
    kind = "nginx"

    def __init__(
        self,
        workdir: str | Path,
        address: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        name: str = "web",
        workers: int = 1,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.workers = workers
        self.tls = tls
        super().__init__(workdir, address, port, netns=netns, name=name, config_name="nginx.conf")

    def argv(self) -> list[str]:
        return [NGINX, "-c", str(self.config_path), "-p", str(self.workdir)]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    def config(self) -> str:
        work = self.workdir
        listen = f"{self.endpoint}{' ssl' if self.tls else ''} backlog=4096"
        tls = (
            f"    ssl_certificate {self.tls[0]};\n    ssl_certificate_key {self.tls[1]};\n"
            if self.tls
            else ""
        )
        temp = "".join(
            f"  {kind}_temp_path {work}/tmp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""worker_processes {self.workers};
daemon off;
master_process on;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
{temp}  server {{
    listen {listen};
{tls}    location = /health {{
      if (-f {work}/down) {{ return 503 "fail {self.name}\\n"; }}
      return 200 "ok {self.name}\\n";
    }}
    location / {{ return 200 "ok {self.name}\\n"; }}
  }}
}}
"""

    def set_down(self, down: bool) -> None:
        """While down, `/health` answers 503."""
        flag = self.workdir / "down"
        if down:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)
