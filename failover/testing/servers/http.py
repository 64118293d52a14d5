"""A real HTTP(S) server for tests, the lab and the demo (aiohttp, in its own process).

Routes: `/health` answers 200 `ok NAME`, or what the state file says (`set_health(503)`,
`set_health(200, delay_s=2)`); `/status/CODE`; `/delay/SECONDS`; `/redirect` (302 to
/health); `/host` echoes the Host header, `/header/NAME` any other; `/tls-name` echoes the
SNI name the client sent.
Run directly: `python -m failover.testing.servers.http --listen 127.0.0.1:8080 --dir DIR [--tls-cert
CERT --tls-key KEY] [--name app]`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from pathlib import Path

from failover.testing.servers.base import READY_FILE, ModuleServer

HEALTH_FILE = "health"  # "STATUS [DELAY_S]"
HEALTH_FILE = "health"  # "STATUS [DELAY_S]"


class HttpServer(ModuleServer):
    """One HTTP(S) server process bound to `address:port` (inside `netns` when given)."""

    kind = "http"
    module = "failover.testing.servers.http"

    def __init__(
        self,
        workdir: str | Path,
        address: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        tls: tuple[str, str] | None = None,
        name: str = "app",
    ) -> None:
        super().__init__(workdir, address, port, netns=netns, tls=tls, name=name)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    def set_health(self, status: int = 200, delay_s: float = 0.0) -> None:
        """What `/health` answers from now on (and after how long)."""
        path = self.workdir / HEALTH_FILE
        path.with_suffix(".tmp").write_text(f"{status} {delay_s}\n")
        path.with_suffix(".tmp").replace(path)


# --- the server itself (runs in the child process) --------------------------------------------


def _health(directory: Path) -> tuple[int, float]:
    try:
        fields = (directory / HEALTH_FILE).read_text().split()
    except OSError:
        return 200, 0.0
    return int(fields[0]), float(fields[1]) if len(fields) > 1 else 0.0


async def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    directory = Path(args.dir)
    name = args.name
    sni_names: dict[int, str | None] = {}

    async def health(request: web.Request) -> web.Response:
        status, delay_s = _health(directory)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        return web.Response(status=status, text=f"{'ok' if status < 400 else 'fail'} {name}\n")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text=f"{name}\n")

    async def delay(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.match_info["seconds"]))
        return web.Response(text=f"ok {name}\n")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/health")

    async def host(request: web.Request) -> web.Response:
        return web.Response(text=f"host={request.host}\n")

    async def header(request: web.Request) -> web.Response:
        wanted = request.match_info["name"]
        return web.Response(text=f"{wanted}={request.headers.get(wanted, '')}\n")

    async def tls_name(request: web.Request) -> web.Response:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        return web.Response(text=f"sni={sni_names.get(id(ssl_object))}\n")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/status/{code:\\d+}", status)
    app.router.add_get("/delay/{seconds}", delay)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/host", host)
    app.router.add_get("/header/{name}", header)
    app.router.add_get("/tls-name", tls_name)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)

        def remember_sni(ssl_object: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            if len(sni_names) > 10_000:
                sni_names.clear()
            sni_names[id(ssl_object)] = name

        context.sni_callback = remember_sni
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    address, _, port = args.listen.rpartition(":")
    await web.TCPSite(
        runner, address.strip("[]"), int(port), ssl_context=context, backlog=1024
    ).start()
    (directory / READY_FILE).write_text("ready\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--name", default="app")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
