"""nginx as a fast native HTTP server (benchmarks, the lab's app and lb sites).

`/health` answers 200 `ok NAME`, or 503 while the `down` file exists (`set_down(True)`);
every other path answers 200 as well, so a benchmark can hit any URL.
"""

from __future__ import annotations

from pathlib import Path

from failover.servers.base import listening, pick_port, url_host, wait_ready
from failover.servers.process import Process

NGINX = "/usr/sbin/nginx"


class NginxServer:
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
        self.workdir = Path(workdir)
        self.address = address
        self.port = pick_port(address, port, netns)
        self.netns = netns
        self.name = name
        self.workers = workers
        self.tls = tls
        self.config_path = self.workdir / "nginx.conf"
        self.process = Process(
            f"nginx {name}", [NGINX, "-c", str(self.config_path), "-p", str(self.workdir)],
            log_path=self.workdir / "nginx.log", netns=netns,
        )

    @property
    def endpoint(self) -> str:
        return f"{url_host(self.address)}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    def config(self) -> str:
        work = self.workdir
        listen = f"{self.endpoint}{' ssl' if self.tls else ''} backlog=4096"
        tls = (f"    ssl_certificate {self.tls[0]};\n    ssl_certificate_key {self.tls[1]};\n"
               if self.tls else "")
        temp = "".join(f"  {kind}_temp_path {work}/tmp/{kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
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

    def start(self, timeout_s: float = 10.0) -> NginxServer:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        self.process.start()
        wait_ready(self.process, lambda: listening(self.address, self.port, self.netns),
                   timeout_s, "listening")
        return self

    def stop(self) -> None:
        self.process.stop()

    def set_down(self, down: bool) -> None:
        """While down, `/health` answers 503."""
        flag = self.workdir / "down"
        if down:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)
