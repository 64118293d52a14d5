"""A real SMTP server (aiosmtpd) for tests, the lab and the demo, in its own process.

It accepts and discards mail, offers STARTTLS when given a certificate, and can greet with
another code (`banner_code=421`: the server is refusing service, as an overloaded or
draining MTA does) — a client then sees that banner and the connection closes.
Run directly: `python -m failover.testing.servers.smtp --listen ADDR:PORT --dir DIR [--tls-cert CERT
--tls-key KEY] [--banner-code 421]`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from pathlib import Path

from failover.testing.servers.base import READY_FILE, ModuleServer


class SmtpServer(ModuleServer):
    kind = "smtp"
    module = "failover.testing.servers.smtp"

    def __init__(
        self,
        workdir: str | Path,
        address: str = "127.0.0.1",
        port: int | None = None,
        *,
        netns: str | None = None,
        tls: tuple[str, str] | None = None,
        banner_code: int = 220,
        name: str = "mail",
    ) -> None:
        self.banner_code = banner_code
        super().__init__(
            workdir,
            address,
            port,
            netns=netns,
            tls=tls,
            name=name,
            extra=["--banner-code", str(banner_code)],
        )


async def _serve(args: argparse.Namespace) -> None:
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import SMTP

    address, _, port = args.listen.rpartition(":")
    address = address.strip("[]")
    loop = asyncio.get_running_loop()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)

    if args.banner_code == 220:
        server = await loop.create_server(
            lambda: SMTP(
                Sink(), hostname=args.name, tls_context=context, require_starttls=False, loop=loop
            ),
            address,
            int(port),
        )
    else:

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(f"{args.banner_code} {args.name} Service not available\r\n".encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(refuse, address, int(port))
    (Path(args.dir) / READY_FILE).write_text("ready\n")
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--name", default="mail")
    parser.add_argument("--banner-code", type=int, default=220)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
