"""DNS steering: RFC 2136 dynamic updates signed with TSIG, fenced by an epoch record.

One UPDATE replaces every name of the group with the active site's addresses and the epoch
record `_epoch.<group>._failover.<zone>` (TXT) with the new epoch, under the prerequisite that
the epoch record still holds the epoch read just before (or the one the caller says it last
applied). A stale leader's update therefore fails at the server, not only in our code.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from failover.config.model import DnsSteering, split_host_port
from failover.core.graceful import dns_ttl
from failover.core.model import GroupState
from failover.secrets import register
from failover.steer.base import Steerer, SteerError, SteerResult
from failover.steer.netns import netns_socket
from failover.steer.transcript import Transcript, dns_message_lines

ALGORITHMS = {"hmac-sha256": dns.tsig.HMAC_SHA256, "hmac-sha512": dns.tsig.HMAC_SHA512}


class _Transient(Exception):
    """The server did not answer (timeout, refused connection): worth another try."""


class _Refused(Exception):
    """The server answered no: a failed prerequisite, a rejected key, a refused update."""


@dataclass(frozen=True, slots=True)
class ZoneView:
    """What one server answers for the group: per name its addresses, and the epoch."""

    records: dict[str, frozenset[str]]
    epoch: int | None


class Rfc2136Steerer(Steerer):
    """The leader's DNS steering of one group. `netns` opens its sockets in that namespace."""

    def __init__(
        self,
        group: str,
        steering: DnsSteering,
        *,
        netns: str | None = None,
        secret: str | None = None,
        deadline_s: float = 5.0,
        poll_s: float = 0.02,
        transcript: Transcript | None = None,
    ) -> None:
        self.group = group
        self.site = ""
        self.steering = steering
        self.netns = netns
        self.deadline_s = deadline_s
        self.poll_s = poll_s
        self.transcript = transcript
        self.zone = dns.name.from_text(steering.zone)
        self.servers = [split_host_port(server) for server in steering.servers]
        self.epoch_name = dns.name.from_text(f"_epoch.{group}._failover", self.zone)
        self.names = {self._fqdn(name): per_site for name, per_site in steering.names.items()}
        key = secret if secret is not None else _read_secret(steering.tsig.secret_file)
        register(key)
        self.keyname = dns.name.from_text(steering.tsig.name)
        self.keyring = dns.tsigkeyring.from_text({steering.tsig.name: key})
        self.algorithm = ALGORITHMS[steering.tsig.algorithm]
        self.types = ["A"] + (["AAAA"] if self._any_v6() else [])

    # --- the contract ----------------------------------------------------------------------

    def apply(
        self,
        state: GroupState,
        *,
        force: bool = False,
        deadline_s: float | None = None,
        previous_epoch: int | None = None,
    ) -> SteerResult:
        """Point the group's names at `state.active`. `previous_epoch`: the epoch the caller
        believes the zone holds (None: read it from the primary first)."""
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else self.deadline_s)
        site, epoch = state.active, state.epoch
        want = self._wanted(site)
        if want is None:
            return self._not_done(
                "refused", f"fail-open guard: no addresses for {site} in group {self.group}"
            )
        ttl = dns_ttl(state, self.steering.ttl)  # a graceful switchover's short TTL, or the usual
        try:
            changed = self._update(site, epoch, want, previous_epoch, deadline, ttl)
        except _Refused as exc:
            return self._not_done("refused", str(exc))
        except _Transient as exc:
            return self._not_done("failed", f"the update was not delivered: {exc}")
        problem = self._wait_for(want, epoch, deadline)
        return self._result(
            site, epoch, "unverified" if problem else "verified", problem or "", changed
        )

    def read(self, timeout_s: float = 1.0) -> SteerResult:
        views: dict[str, ZoneView | str] = {}
        for host, port in self.servers:
            try:
                views[f"{host}:{port}"] = self._view(host, port, timeout_s)
            except (_Transient, _Refused) as exc:
                views[f"{host}:{port}"] = str(exc)
        first = next((v for v in views.values() if isinstance(v, ZoneView)), None)
        if first is None:
            return self._result(
                "", 0, "failed", "; ".join(f"{s}: {v}" for s, v in views.items()), announced=False
            )
        site = next((s for s in self._sites() if self._wanted(s) == first.records), "")
        disagree = [s for s, v in views.items() if v != first]
        return self._result(
            site,
            first.epoch or 0,
            "unverified" if disagree or not site else "verified",
            f"servers disagree: {', '.join(disagree)}" if disagree else "",
            announced=bool(site),
        )

    def _not_done(self, outcome: str, detail: str) -> SteerResult:
        """A refused or failed apply: what is in effect as read back, with the reason."""
        now = self.read(timeout_s=0.2)
        return self._result(
            now.site, now.epoch, outcome, detail, announced=now.announcement == "primary"
        )

    # --- the update ------------------------------------------------------------------------

    def _update(
        self,
        site: str,
        epoch: int,
        want: dict[str, frozenset[str]],
        previous: int | None,
        deadline: float,
        ttl: int,
    ) -> bool:
        for attempt in self._retrying(deadline):
            with attempt:
                host, port = self.servers[0]
                if previous is None:
                    current = self._view(host, port, self._left(deadline))
                    if current.epoch is not None and current.epoch > epoch:
                        raise _Refused(
                            f"stale epoch {epoch}: the zone already holds epoch {current.epoch}"
                        )
                    if current.epoch == epoch and current.records == want:
                        return False
                    base = current.epoch
                else:
                    base = previous
                message = self._message(want, epoch, base, ttl)
                if self.transcript:
                    self.transcript.record(*dns_message_lines(message))
                self._send(message, host, port, deadline)
                return True
        return False  # not reached: the retrying loop either returns or raises

    def _message(
        self, want: dict[str, frozenset[str]], epoch: int, previous: int | None, ttl: int
    ) -> dns.update.UpdateMessage:
        update = dns.update.UpdateMessage(
            self.zone, keyring=self.keyring, keyname=self.keyname, keyalgorithm=self.algorithm
        )
        if previous is None:
            update.absent(self.epoch_name, "TXT")
        else:
            update.present(self.epoch_name, "TXT", f'"{previous}"')
        for name, addresses in sorted(want.items()):
            for kind in self.types:
                update.delete(name, kind)
            for address in sorted(addresses, key=ipaddress.ip_address):
                kind = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
                update.add(name, ttl, kind, address)
        update.replace(self.epoch_name, ttl, "TXT", f'"{epoch}"')
        return update

    def _send(
        self, message: dns.update.UpdateMessage, host: str, port: int, deadline: float
    ) -> None:
        try:
            with self._tcp(host, port, deadline) as sock:
                response = dns.query.tcp(message, host, timeout=self._left(deadline), sock=sock)
        except dns.tsig.PeerError as exc:
            raise _Refused(
                f"{host}:{port} rejected the TSIG key {self.keyname}: {type(exc).__name__}"
            ) from exc
        except (OSError, dns.exception.Timeout, EOFError) as exc:
            raise _Transient(f"{host}:{port}: {exc or type(exc).__name__}") from exc
        rcode = response.rcode()
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET):
            raise _Refused(
                f"{host}:{port} refused the update: prerequisite failed "
                f"({dns.rcode.to_text(rcode)}): the epoch record no longer holds "
                "the previous epoch"
            )
        if rcode != dns.rcode.NOERROR:
            raise _Refused(f"{host}:{port} refused the update: {dns.rcode.to_text(rcode)}")

    # --- verification ----------------------------------------------------------------------

    def _wait_for(self, want: dict[str, frozenset[str]], epoch: int, deadline: float) -> str | None:
        pending = list(self.servers)
        problems: dict[tuple[str, int], str] = {}
        while True:
            for host, port in list(pending):
                try:
                    view = self._view(host, port, min(0.5, max(0.05, self._left(deadline))))
                except (_Transient, _Refused) as exc:
                    problems[(host, port)] = str(exc)
                    continue
                if view.records == want and view.epoch == epoch:
                    pending.remove((host, port))
                    problems.pop((host, port), None)
                else:
                    problems[(host, port)] = f"answers epoch {view.epoch}"
            if not pending:
                return None
            if time.monotonic() >= deadline:
                return "unverified on " + "; ".join(
                    f"{host}:{port} ({problems.get((host, port), 'no answer')})"
                    for host, port in pending
                )
            time.sleep(self.poll_s)

    def _view(self, host: str, port: int, timeout_s: float) -> ZoneView:
        merged: dict[str, frozenset[str]] = {}
        for name in self.names:
            merged[name] = frozenset().union(
                *(self._query(host, port, name, kind, timeout_s) for kind in self.types)
            )
        texts = self._query(host, port, self.epoch_name.to_text(), "TXT", timeout_s)
        epochs = [int(text.strip('"')) for text in texts if text.strip('"').isdigit()]
        return ZoneView(merged, max(epochs) if epochs else None)

    def _query(self, host: str, port: int, name: str, kind: str, timeout_s: float) -> list[str]:
        query = dns.message.make_query(name, kind)
        query.flags &= ~dns.flags.RD
        try:
            with netns_socket(self.netns, _family(host), socket.SOCK_DGRAM) as sock:
                sock.connect((host, port))  # an ICMP "port unreachable" fails it at once
                sock.setblocking(False)
                answer = dns.query.udp(query, host, port=port, timeout=timeout_s, sock=sock)
        except (OSError, dns.exception.Timeout) as exc:
            raise _Transient(f"{host}:{port}: {exc or type(exc).__name__}") from exc
        if answer.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise _Refused(f"{host}:{port} answers {dns.rcode.to_text(answer.rcode())}")
        return [
            item.to_text()
            for rrset in answer.answer
            if rrset.rdtype == dns.rdatatype.from_text(kind)
            for item in rrset
        ]

    # --- helpers ---------------------------------------------------------------------------

    def _tcp(self, host: str, port: int, deadline: float) -> socket.socket:
        sock = netns_socket(self.netns, _family(host), socket.SOCK_STREAM)
        try:
            sock.settimeout(self._left(deadline))
            sock.connect((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _retrying(self, deadline: float) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(20) | stop_after_delay(self._left(deadline)),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )

    def _left(self, deadline: float) -> float:
        return max(0.05, deadline - time.monotonic())

    def _wanted(self, site: str) -> dict[str, frozenset[str]] | None:
        if any(site not in per_site for per_site in self.names.values()):
            return None
        return {name: frozenset(per_site[site]) for name, per_site in self.names.items()}

    def _sites(self) -> list[str]:
        return sorted({site for per_site in self.names.values() for site in per_site})

    def _any_v6(self) -> bool:
        return any(
            ipaddress.ip_address(a).version == 6
            for per_site in self.names.values()
            for addresses in per_site.values()
            for a in addresses
        )

    def _fqdn(self, name: str) -> str:
        return dns.name.from_text(name, self.zone).to_text()

    def _result(
        self,
        site: str,
        epoch: int,
        outcome: str,
        detail: str,
        changed: bool = False,
        announced: bool = True,
    ) -> SteerResult:
        return SteerResult(
            group=self.group,
            site=site,
            epoch=epoch,
            announcement="primary" if announced and site else "withdrawn",
            outcome=outcome,  # type: ignore[arg-type]
            detail=detail,
            changed=changed,
        )


def _family(host: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _read_secret(path: str) -> str:
    try:
        secret = Path(path).read_text().strip()
        base64.b64decode(secret, validate=True)
    except OSError as exc:
        raise SteerError(f"cannot read the TSIG secret {path}: {exc.strerror}") from None
    except ValueError:
        raise SteerError(f"the TSIG secret in {path} is not base64") from None
    return secret
