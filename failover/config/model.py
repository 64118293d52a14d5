"""The typed configuration of one failover cluster.

Validated once, at the edge (`failover.config.load`). Everything downstream receives these
frozen models and may trust them: cross-field rules are checked here, not again later.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from failover.config.base import Name, Seconds, SiteName, Strict
from failover.config.base import ServiceKind as ServiceKind
from failover.config.base import ServiceRole as ServiceRole
from failover.config.checks import Check as Check
from failover.config.checks import CheckBase as CheckBase
from failover.config.checks import CommandCheck as CommandCheck
from failover.config.checks import DnsCheck as DnsCheck
from failover.config.checks import HttpCheck as HttpCheck
from failover.config.checks import IcmpCheck as IcmpCheck
from failover.config.checks import PostgresCheck as PostgresCheck
from failover.config.checks import SmtpCheck as SmtpCheck
from failover.config.checks import TcpCheck as TcpCheck
from failover.config.checks import TlsClient as TlsClient

SERVING = "serving"
WITNESS = "witness"

# --- cluster and coordination -------------------------------------------------------------


class Credentials(Strict):
    """A digest identity; the secret lives in a file holding `user:password`."""

    credentials_file: str


DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}:[A-Za-z0-9+/]{27}=")


class OperatorIdentity(Strict):
    """One operator's own ZooKeeper digest identity: the file holding its `user:password`
    (where the CLI or a test reads it), or only its digest `user:base64(sha1)` (all the
    daemons need: they never hold the operator's password). The user is the operator's name."""

    credentials_file: str | None = None
    digest: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> OperatorIdentity:
        if (self.credentials_file is None) == (self.digest is None):
            raise ValueError("give exactly one of credentials_file and digest")
        if self.digest is not None and not DIGEST.fullmatch(self.digest):
            raise ValueError(
                "digest: expected user:BASE64 (28 characters, as ZooKeeper's "
                "DigestAuthenticationProvider prints it)"
            )
        return self


class TlsOptions(Strict):
    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_hostname: bool = True

    @model_validator(mode="after")
    def _files_when_enabled(self) -> TlsOptions:
        if self.enabled and not self.ca_file:
            raise ValueError("ca_file is required when tls is enabled")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together")
        return self


class ZooKeeperOptions(Strict):
    hosts: list[str] = Field(min_length=1)
    chroot: str = "/failover"
    session_timeout_s: Seconds = 4.0
    daemon_auth: Credentials | None = None
    # Without daemon_auth every node is open to anyone; `validate` and `run` refuse that
    # unless this says it is meant (a lab on loopback, a test).
    insecure_open_acl: bool = False
    # The shared operator identity (kept for compatibility: its commands are audited as
    # that one identity) and the operators' own identities, by name.
    operator_auth: Credentials | None = None
    operators: dict[Name, OperatorIdentity] = {}
    tls: TlsOptions = TlsOptions()

    @model_validator(mode="after")
    def _operator_names(self) -> ZooKeeperOptions:
        for name, identity in self.operators.items():
            if identity.digest is not None and identity.digest.split(":", 1)[0] != name:
                raise ValueError(
                    f"operators.{name}.digest: names user "
                    f"{identity.digest.split(':', 1)[0]!r}, not {name!r}"
                )
        return self

    @field_validator("hosts")
    @classmethod
    def _host_port(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            _split_host_port(host)
        return hosts

    @field_validator("chroot")
    @classmethod
    def _absolute(cls, chroot: str) -> str:
        if not chroot.startswith("/") or (chroot.endswith("/") and chroot != "/"):
            raise ValueError("must be an absolute path without a trailing slash")
        return chroot


class ApiTls(Strict):
    """HTTPS for the API; with `client_ca_file`, clients must show a certificate it signed."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class ApiOptions(Strict):
    """Write endpoints accept only Escher-signed requests (AWS4-style HMAC)."""

    tls: ApiTls | None = None

    keys_file: str | None = Field(default=None, description="lines of key_id:secret")
    credential_scope: str = "failover/api/escher_request"
    clock_skew_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    # Failure limits (see failover.api.limits): per (source, key id) and per source address;
    # a limited source waits backoff_s, doubling per further failure, at most lockout_s.
    max_failures: int = Field(default=5, ge=1)
    max_source_failures: int = Field(default=20, ge=1)
    backoff_s: Seconds = 1.0
    lockout_s: Seconds = 300.0
    # Connections: at most this many at once; a request's headers must arrive within
    # header_timeout_s of the connection (or of its previous answer), its body within
    # body_timeout_s.
    max_connections: int = Field(default=64, ge=1, le=4096)
    header_timeout_s: Seconds = 5.0
    body_timeout_s: Seconds = 5.0
    # Refused requests are counted per source and reason and recorded once per interval.
    refusal_interval_s: Seconds = 10.0
    # A second factor (TOTP, failover.api.totp): lines key_id:BASE32SECRET; the writes that
    # need it (a forced switchover always does); wrong codes per key id before it waits.
    totp_file: str | None = None
    totp_actions: list[Literal["switchover", "freeze", "unfreeze"]] = [
        "switchover",
        "freeze",
        "unfreeze",
    ]
    max_totp_failures: int = Field(default=5, ge=1)


class DaemonOptions(Strict):
    cycle_s: Seconds = 1.0  # the longest a daemon waits between cycles when nothing wakes it
    heartbeat_s: Seconds = 2.0  # observations are republished at least this often
    watchdog_s: Seconds = 3.0  # the supervisor kills a daemon whose cycles stall this long
    # The longest the supervisor's stop hook takes to start and demote the site to held.
    stop_hook_s: Seconds = 2.0
    # Where a leading daemon records its decisions' inputs for `failover replay` (None: off).
    record_dir: str | None = None
    record_max_bytes: int = Field(default=256 * 2**20, ge=2**16)
    record_keep_s: Seconds = 31 * 86400.0


class Cluster(Strict):
    name: Name
    zookeeper: ZooKeeperOptions
    api: ApiOptions = ApiOptions()
    daemon: DaemonOptions = DaemonOptions()


class Instance(Strict):
    """One daemon process: where it runs and where its HTTP API listens."""

    site: SiteName
    api: str = "127.0.0.1:8700"
    roles: list[Literal["observer", "leader", "agent"]] = ["observer", "leader", "agent"]

    @field_validator("api")
    @classmethod
    def _api(cls, api: str) -> str:
        _split_host_port(api, ip_only=True)  # the signed Host names it: one exact address
        return api


# --- checks --------------------------------------------------------------------------------


class Service(Strict):
    """A service at one site: its endpoints are probed by one kind of check."""

    kind: ServiceKind
    role: ServiceRole = "critical"
    endpoints: list[str] = Field(default=[], description="host:port, or host for icmp")
    min_up: int = Field(default=1, ge=1)
    check: Check

    @model_validator(mode="after")
    def _endpoints(self) -> Service:
        if self.check.type == "command":
            if self.endpoints:
                raise ValueError("a command check takes no endpoints (put them in the command)")
            return self
        if not self.endpoints:
            raise ValueError("at least one endpoint is required")
        for endpoint in self.endpoints:
            if self.check.type == "icmp":
                _address(endpoint)
            else:
                _split_host_port(endpoint)
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("an endpoint is listed twice")
        if self.min_up > len(self.endpoints):
            raise ValueError(f"min_up ({self.min_up}) exceeds the {len(self.endpoints)} endpoints")
        return self

    def targets(self) -> list[str]:
        """The names of what gets probed: the endpoints, or the command's single target."""
        return list(self.endpoints) or ["command"]


class Site(Strict):
    role: Literal["serving", "witness"] = "serving"
    services: dict[Name, Service] = {}

    @model_validator(mode="after")
    def _witness_serves_nothing(self) -> Site:
        if self.role == WITNESS and self.services:
            raise ValueError("a witness site observes and votes only; it cannot have services")
        return self


# --- groups and steering -------------------------------------------------------------------


class BgpSite(Strict):
    """How one site's agent announces the prefix: a route in a kernel table BIRD exports."""

    table: int = Field(default=100, ge=1, le=2**31 - 1)
    bird_socket: str = "/run/bird/bird.ctl"
    netns: str | None = None
    protocol: str | None = Field(default=None, description="BIRD protocol to check, e.g. isp")


class BgpSteering(Strict):
    method: Literal["bgp"]
    prefix: str
    lease_s: Seconds = 10.0
    backup: bool = True
    metric_primary: int = Field(default=10, ge=0)
    metric_held: int = Field(default=15, ge=0)
    metric_backup: int = Field(default=20, ge=0)
    sites: dict[SiteName, BgpSite]

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        try:
            ipaddress.ip_network(prefix, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a network prefix: {exc}") from None
        return prefix

    @model_validator(mode="after")
    def _metrics(self) -> BgpSteering:
        if not self.metric_primary < self.metric_held < self.metric_backup:
            raise ValueError(
                "metrics must be ordered metric_primary < metric_held < "
                "metric_backup (lower is preferred)"
            )
        return self


class Tsig(Strict):
    name: str
    algorithm: Literal["hmac-sha256", "hmac-sha512"] = "hmac-sha256"
    secret_file: str


class DnsSteering(Strict):
    method: Literal["dns"]
    zone: str
    ttl: int = Field(default=30, ge=0, le=86400)
    servers: list[str] = Field(min_length=1, description="authoritative servers, host:port")
    tsig: Tsig
    names: dict[str, dict[SiteName, list[str]]] = Field(min_length=1)
    timeout_s: Seconds = 2.0

    @field_validator("zone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        return zone if zone.endswith(".") else zone + "."

    @field_validator("servers")
    @classmethod
    def _servers(cls, servers: list[str]) -> list[str]:
        for server in servers:
            _split_host_port(server, ip_only=True)  # updates go to addresses, not names
        return servers

    @model_validator(mode="after")
    def _names(self) -> DnsSteering:
        for name, per_site in self.names.items():
            fqdn = name if name.endswith(".") else f"{name}.{self.zone}"
            if not (fqdn == self.zone or fqdn.endswith("." + self.zone)):
                raise ValueError(f"name {name!r} is outside zone {self.zone}")
            for site, addresses in per_site.items():
                if not addresses:
                    raise ValueError(f"name {name!r} has no address for site {site}")
                for address in addresses:
                    try:
                        ipaddress.ip_address(address)
                    except ValueError:
                        raise ValueError(
                            f"name {name!r}: {address!r} is not an IP address "
                            "(an A or AAAA record holds one)"
                        ) from None
        return self


Steering = Annotated[BgpSteering | DnsSteering, Field(discriminator="method")]


class Group(Strict):
    services: list[Name] = Field(min_length=1)
    steering: Steering
    preferred_site: SiteName | None = None


class Policy(Strict):
    hold_down_s: float = Field(default=3.0, ge=0)
    cooldown_s: float = Field(default=60.0, ge=0)
    max_switches_per_hour: int = Field(default=4, ge=1)
    failback: Literal["manual", "auto"] = "manual"
    failback_after_s: float = Field(default=300.0, ge=0)
    observer_quorum: int | None = Field(default=None, ge=1, description="default: a majority")
    stale_after_s: Seconds = 10.0
    preferred_site: SiteName | None = None
    graceful_switchover: bool = False
    graceful_ttl_s: int = Field(default=5, ge=0, le=86400)
    drain_s: float = Field(default=10.0, ge=0, le=86400)
    graceful_verify_s: Seconds = 15.0


class Config(Strict):
    cluster: Cluster
    sites: dict[SiteName, Site] = Field(min_length=2)
    instances: dict[Name, Instance] = Field(min_length=1)
    groups: dict[Name, Group] = Field(min_length=1)
    policy: Policy = Policy()

    @model_validator(mode="after")
    def _cross_fields(self, info: ValidationInfo) -> Config:
        if info.context and info.context.get("defer_cross_field_rules"):
            return self  # the loader reports them one by one, each with its path
        from failover.config.rules import cross_field_problems

        problems = cross_field_problems(self)
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        return self

    # --- derived views used everywhere --------------------------------------------------

    @property
    def serving_sites(self) -> list[str]:
        return [name for name, site in self.sites.items() if site.role == SERVING]

    @property
    def observer_sites(self) -> list[str]:
        """Every site that runs an instance observes and votes."""
        return sorted({instance.site for instance in self.instances.values()})

    @property
    def observer_quorum(self) -> int:
        if self.policy.observer_quorum is not None:
            return self.policy.observer_quorum
        return len(self.observer_sites) // 2 + 1

    def preferred_site(self, group: str) -> str:
        chosen = self.groups[group].preferred_site or self.policy.preferred_site
        return chosen or self.serving_sites[0]

    def lease_s(self, group: str) -> float:
        steering = self.groups[group].steering
        return steering.lease_s if isinstance(steering, BgpSteering) else 0.0


HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63}){0,20}\.?")
PORT = re.compile(r"[0-9]{1,5}")


def _split_host_port(text: str, ip_only: bool = False) -> tuple[str, int]:
    """`host:port`, `[v6]:port`: the host an address (or, unless `ip_only`, a host name)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if ip_only or bare != host or not HOST_NAME.fullmatch(bare):
            want = "an IP address" if ip_only else "an IP address or a host name"
            raise ValueError(f"{text!r}: {bare!r} is not {want}") from None
        return bare, int(port)
    if (address.version == 6) != (bare != host):
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets, [{bare}]:{port}")
    return bare, int(port)


def _address(text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not HOST_NAME.fullmatch(text):
            raise ValueError(f"{text!r} is not an address or host name") from None


def split_host_port(text: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) -> (host, port); validated configs never raise here."""
    return _split_host_port(text)
