"""BIND 9 on a loopback address and a free port, primary for one zone (tests, benchmarks).

The lab's two-server setup (primary and NOTIFY-fed secondary inside namespaces) is in
failover/lab/bind.py; this is the single server a test on loopback needs. With `tsig`
(name, base64 secret) the zone accepts dynamic updates signed with that key only.
"""

from __future__ import annotations

from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from failover.testing.servers.process import Process, free_port, wait_until


class LoopbackBind:
    def __init__(
        self,
        workdir: str | Path,
        zone: str,
        zone_text: str,
        *,
        tsig: tuple[str, str] | None = None,
        address: str = "127.0.0.1",
    ) -> None:
        self.workdir = Path(workdir)
        self.zone = zone if zone.endswith(".") else zone + "."
        self.zone_text = zone_text
        self.tsig = tsig
        self.address = address
        self.port = free_port(address)
        self.process = Process(
            "named",
            ["named", "-g", "-n", "1", "-c", str(self.workdir / "named.conf")],
            log_path=self.workdir / "named.log",
        )

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def config(self) -> str:
        bare = self.zone.rstrip(".")
        key, update = "", ""
        if self.tsig is not None:
            name, secret = self.tsig
            key = f'key "{name}" {{ algorithm hmac-sha256; secret "{secret}"; }};'
            update = f' allow-update {{ key "{name}"; }};'
        return f"""options {{
  directory "{self.workdir}";
  pid-file "{self.workdir / "named.pid"}";
  listen-on port {self.port} {{ {self.address}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  session-keyfile "{self.workdir / "session.key"}";
  managed-keys-directory "{self.workdir}";
}};
controls {{ }};
{key}
zone "{bare}" {{ type primary; file "{bare}.zone";{update} }};
"""

    def start(self, timeout_s: float = 15.0) -> LoopbackBind:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / f"{self.zone.rstrip('.')}.zone").write_text(self.zone_text)
        (self.workdir / "named.conf").write_text(self.config())
        self.process.start()
        try:
            wait_until(
                self._answers,
                timeout_s,
                "named answering",
                retry_on=(OSError, dns.exception.DNSException),
            )
        except TimeoutError:
            self.process.stop()
            raise self.process.fail("named did not answer") from None
        return self

    def _answers(self) -> bool:
        query = dns.message.make_query(self.zone, "SOA")
        response = dns.query.udp(query, self.address, port=self.port, timeout=0.3)
        return response.rcode() == dns.rcode.NOERROR

    def answer(self, name: str, kind: str = "A") -> list[str]:
        """The addresses the server gives for `name` (relative to the zone)."""
        query = dns.message.make_query(f"{name}.{self.zone}", kind)
        response = dns.query.udp(query, self.address, port=self.port, timeout=0.5)
        return sorted(item.to_text() for rrset in response.answer for item in rrset)

    def answer_ttl(self, name: str, kind: str = "A") -> tuple[list[str], int | None]:
        """The addresses the server gives for `name`, and the TTL it gives them with."""
        query = dns.message.make_query(f"{name}.{self.zone}", kind)
        response = dns.query.udp(query, self.address, port=self.port, timeout=0.5)
        ttls = [rrset.ttl for rrset in response.answer]
        return sorted(item.to_text() for rrset in response.answer for item in rrset), (
            min(ttls) if ttls else None
        )

    def stop(self) -> None:
        self.process.stop(timeout_s=10.0)  # named takes about 2 s to exit on SIGTERM
