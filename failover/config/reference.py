"""What every config field means: the JSON Schema (`failover schema`) and docs/config.md.

The meanings live here rather than in the models so that the models stay short to read;
tests/config/test_reference.py fails when a model field has no meaning here (or a meaning
names a field that no longer exists) and when the checked-in docs/config.md is not what
`failover schema --markdown` prints.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from failover.config import model

# "Model.field": meaning. Durations (names ending in _s) are in seconds; see unit_of().
MEANINGS: dict[str, str] = {
    # the whole file
    "Config.cluster": "The cluster: its name, ZooKeeper, the operator API, daemon timing.",
    "Config.sites": "The sites by name: exactly two serving sites, plus any witness sites.",
    "Config.instances": "The daemons by name: where each runs, its API address, its roles.",
    "Config.groups": "What moves together: services and one steering method per group.",
    "Config.policy": "When and how often the leader may switch a group's active site.",
    # cluster
    "Cluster.name": "The cluster's name; its ZooKeeper nodes live under chroot/name.",
    "Cluster.zookeeper": "The ZooKeeper ensemble that elects the leader and keeps the state.",
    "Cluster.api": "The operator HTTP API: how signed write requests are checked.",
    "Cluster.daemon": "The daemon loop's timing and its watchdog.",
    "ZooKeeperOptions.hosts": "The ensemble's servers, each host:port.",
    "ZooKeeperOptions.chroot": "The ZooKeeper path under which every cluster lives.",
    "ZooKeeperOptions.session_timeout_s": "ZooKeeper session timeout: a daemon silent this "
    "long loses its session (and a leader its leadership).",
    "ZooKeeperOptions.daemon_auth": "The daemons' digest identity (may read and write); "
    "required (validate and run refuse a config without it) unless insecure_open_acl.",
    "ZooKeeperOptions.insecure_open_acl": "Run without daemon_auth: every node readable and "
    "writable by anyone who reaches ZooKeeper (only for a lab or a test; a loud warning).",
    "ZooKeeperOptions.operator_auth": "An identity all operators share (kept for "
    "compatibility): reads, and queues commands audited as that one identity.",
    "ZooKeeperOptions.operators": "Each operator's own identity, by name: reads, and queues "
    "commands in its own folder; the audit trail names it (the CLI: --identity).",
    "OperatorIdentity.credentials_file": "A file holding name:password (mode 0600).",
    "OperatorIdentity.digest": "Only the digest, name:BASE64 (the daemons need no password); "
    "the operator keeps the password file for the CLI's --identity.",
    "ZooKeeperOptions.tls": "TLS to ZooKeeper.",
    "Credentials.credentials_file": "A file holding user:password (mode 0600).",
    "TlsOptions.enabled": "Connect to ZooKeeper over TLS.",
    "TlsOptions.ca_file": "CA certificates (PEM) that sign the servers' certificates; "
    "required when enabled.",
    "TlsOptions.cert_file": "This client's certificate (PEM), for mutual TLS.",
    "TlsOptions.key_file": "This client's private key (PEM, mode 0600), with cert_file.",
    "TlsOptions.verify_hostname": "Check that the server's certificate names its host.",
    "ApiOptions.keys_file": "Lines of key_id:secret allowed to sign write requests "
    "(mode 0600); without it, writes are refused.",
    "ApiOptions.credential_scope": "The Escher credential scope signed requests must use.",
    "ApiOptions.clock_skew_s": "How far a request's signing time may differ from the daemon's "
    "clock; a signature is accepted once, cluster-wide, within this window.",
    "ApiOptions.tls": "HTTPS for the API (cert_file, key_file; client_ca_file for mutual TLS).",
    "ApiOptions.max_failures": "Failed requests from one source naming one key id before that "
    "source must wait (the key id stays usable from elsewhere).",
    "ApiOptions.max_source_failures": "Failed requests from one source address (IPv6: its /64) "
    "before it must wait, whatever key ids it names.",
    "ApiOptions.backoff_s": "A limited source's first wait; it doubles with each further "
    "failure, up to lockout_s.",
    "ApiOptions.lockout_s": "The longest a limited source waits.",
    "ApiOptions.max_connections": "Open API connections at most (a quarter of them per source).",
    "ApiOptions.header_timeout_s": "A request's headers (and a TLS handshake) must arrive "
    "within this.",
    "ApiOptions.body_timeout_s": "A request's body must arrive within this.",
    "ApiOptions.refusal_interval_s": "Refused requests are counted per source and reason and "
    "recorded once per interval, apart from the audit trail.",
    "ApiOptions.totp_file": "Lines of key_id:BASE32SECRET (mode 0600): the second factor of "
    "each key id.",
    "ApiOptions.totp_actions": "The writes that need a second factor (a forced switchover "
    "always does).",
    "ApiOptions.max_totp_failures": "Wrong second-factor codes per key id before it must wait.",
    "ApiTls.cert_file": "The API's certificate (PEM).",
    "ApiTls.key_file": "The API's private key (PEM, mode 0600).",
    "ApiTls.client_ca_file": "With it, clients must show a certificate this CA signed (mutual "
    "TLS).",
    "DaemonOptions.cycle_s": "The longest a daemon waits between cycles when nothing wakes it.",
    "DaemonOptions.heartbeat_s": "Observations are republished at least this often; must be "
    "less than policy.stale_after_s.",
    "DaemonOptions.watchdog_s": "The supervisor kills a daemon whose cycles stall this long; "
    "must equal the unit's WatchdogSec=.",
    "DaemonOptions.stop_hook_s": "The longest the supervisor's stop hook takes to start and "
    "hold the site's primary; part of the bound the leader waits before promoting.",
    "DaemonOptions.record_dir": "Where a leading daemon records each cycle's inputs and "
    "decisions (gzip JSON lines, rotated) for `failover replay`; null: no recording. A "
    "relative path resolves against the config's folder.",
    "DaemonOptions.record_max_bytes": "The most the recording of one instance may take on "
    "disk; the oldest files go first.",
    "DaemonOptions.record_keep_s": "Recorded files older than this are removed.",
    # instances and sites
    "Instance.site": "The site this daemon runs in (a key of sites).",
    "Instance.api": "host:port of this daemon's HTTP API (status, metrics, commands).",
    "Instance.roles": "What this daemon does: observer (probes), leader (may lead), agent "
    "(steers its own site).",
    "Site.role": "serving (runs the services) or witness (observes and votes only).",
    "Site.services": "The services this site runs, by name.",
    "Service.kind": "What the service is: app, mail, db, lb, firewall or generic.",
    "Service.role": "critical: down makes the site unhealthy for its groups; degraded: "
    "down raises an alert only.",
    "Service.endpoints": "What is probed: host:port each (a host for icmp; none for command).",
    "Service.min_up": "Endpoints that must be up for the service to count as up.",
    "Service.check": "How each endpoint is probed; `type` selects the kind of check.",
    # checks (CheckBase fields are shared by every check type)
    "CheckBase.interval_s": "Time between two probes of an endpoint.",
    "CheckBase.timeout_s": "A probe that takes longer fails; must be less than interval_s.",
    "CheckBase.rise": "Consecutive passes that turn a down verdict up.",
    "CheckBase.fall": "Consecutive failures that turn an up verdict down.",
    "CheckBase.fast_interval_s": "The interval while a verdict is changing (default: the "
    "larger of timeout_s and interval_s / 2).",
    "CheckBase.disable_file": "While this file exists the check fails without probing "
    "(maintenance).",
    "HttpCheck.type": "http or https.",
    "HttpCheck.path": "The request path.",
    "HttpCheck.method": "GET or HEAD.",
    "HttpCheck.host": "The Host header (default: the endpoint's host).",
    "HttpCheck.expect_status": "Status codes that pass.",
    "HttpCheck.body_regex": "A regular expression the body must match.",
    "HttpCheck.headers": "Extra request headers.",
    "HttpCheck.tls": "TLS options for https.",
    "HttpCheck.follow_redirects": "Follow redirects instead of judging the first answer.",
    "SmtpCheck.type": "smtp.",
    "SmtpCheck.ehlo_name": "The name sent with EHLO.",
    "SmtpCheck.starttls": "Also require a working STARTTLS.",
    "SmtpCheck.expect_banner": "The reply code the greeting must carry.",
    "SmtpCheck.tls": "TLS options for STARTTLS.",
    "PostgresCheck.type": "postgres.",
    "PostgresCheck.database": "The database to connect to.",
    "PostgresCheck.user": "The user to connect as.",
    "PostgresCheck.password_file": "A file holding the password (mode 0600).",
    "PostgresCheck.expect_role": "primary, standby or any: the role the server must have.",
    "PostgresCheck.max_lag_s": "A standby further behind than this fails.",
    "TcpCheck.type": "tcp.",
    "TcpCheck.send": "A string sent once connected.",
    "TcpCheck.expect": "A string that must come back (default: connecting is enough).",
    "IcmpCheck.type": "icmp (echo request to the endpoint's address).",
    "DnsCheck.type": "dns.",
    "DnsCheck.query": "The name asked for.",
    "DnsCheck.record_type": "The record type asked for (A, AAAA, MX, ...).",
    "DnsCheck.expect": "Values the answer must contain (default: any answer).",
    "CommandCheck.type": "command (a Nagios plugin).",
    "CommandCheck.command": "The program and its arguments; exit 0 (OK) and 1 (WARNING) "
    "pass, 2 and 3 fail.",
    "TlsClient.ca_file": "CA certificates (PEM) to verify the server with (default: the system's).",
    "TlsClient.verify": "Verify the server's certificate.",
    "TlsClient.server_name": "The name to verify and send as SNI (default: the endpoint's host).",
    # groups and steering
    "Group.services": "Names of services that move together (each must exist at both "
    "serving sites).",
    "Group.steering": "How traffic moves; `method` selects bgp or dns.",
    "Group.preferred_site": "The site that is active when nothing is wrong (default: "
    "policy.preferred_site, else the first serving site).",
    "BgpSteering.method": "bgp: each site's routers announce the prefix as primary, backup "
    "or not at all.",
    "BgpSteering.prefix": "The provider-independent prefix that moves.",
    "BgpSteering.lease_s": "A site keeps announcing primary this long after its agent's last "
    "confirmation on a live ZooKeeper session, then holds it (never withdrawn).",
    "BgpSteering.backup": "Announce the prefix as backup from the inactive site (else "
    "withdraw it there).",
    "BgpSteering.metric_primary": "Kernel route metric meaning primary (lower than metric_held).",
    "BgpSteering.metric_held": "Kernel route metric meaning held: a former primary that cannot "
    "confirm it still is one (BIRD prepends once: preferred over a backup).",
    "BgpSteering.metric_backup": "Kernel route metric meaning backup (BIRD prepends the AS "
    "path three times).",
    "BgpSteering.sites": "Per serving site: where its agent writes the route and which BIRD "
    "it checks.",
    "BgpSite.table": "The kernel routing table BIRD exports the prefix from.",
    "BgpSite.bird_socket": "BIRD's control socket, to verify what is exported.",
    "BgpSite.netns": "The network namespace that holds the table (default: the daemon's own).",
    "BgpSite.protocol": "The BIRD BGP protocol whose export and session are verified, e.g. isp.",
    "DnsSteering.method": "dns: RFC 2136 updates signed with TSIG.",
    "DnsSteering.zone": "The zone updated (a trailing dot is added).",
    "DnsSteering.ttl": "TTL of the records written.",
    "DnsSteering.servers": "Authoritative servers updated and verified, each host:port.",
    "DnsSteering.tsig": "The TSIG key that signs updates.",
    "DnsSteering.names": "Per name (relative to the zone, or absolute with a trailing dot): "
    "per serving site, the addresses it points to when that site is active.",
    "DnsSteering.timeout_s": "Timeout of one DNS update or query.",
    "Tsig.name": "The key's name, as the servers know it.",
    "Tsig.algorithm": "hmac-sha256 or hmac-sha512.",
    "Tsig.secret_file": "A file holding the base64 secret (mode 0600).",
    # policy
    "Policy.hold_down_s": "A switch waits this long, with the target healthy the whole "
    "time, before it happens.",
    "Policy.cooldown_s": "No automatic switch of a group this long after its last switch.",
    "Policy.max_switches_per_hour": "Automatic switches per group allowed in any hour.",
    "Policy.failback": "manual: traffic stays where it moved; auto: back to the preferred "
    "site once it is healthy for failback_after_s.",
    "Policy.failback_after_s": "With failback auto: how long the preferred site must be "
    "healthy first.",
    "Policy.observer_quorum": "Observer sites that must agree a site is down (default: a "
    "majority of the observer sites).",
    "Policy.stale_after_s": "An observation older than this counts as unknown.",
    "Policy.preferred_site": "The default preferred site of every group.",
    "Policy.graceful_switchover": "Operator switchovers are graceful unless the command says "
    "otherwise: DNS records get graceful_ttl_s one old TTL before the switch and their TTL back "
    "one old TTL after it; a BGP site is held, not backup, for drain_s after the new one is "
    "promoted.",
    "Policy.graceful_ttl_s": "The short TTL DNS records carry during a graceful switchover.",
    "Policy.drain_s": "How long a graceful BGP switchover keeps the old site held after the new "
    "one confirmed primary, for its open connections to drain.",
    "Policy.graceful_verify_s": "How long a graceful switchover waits for every name server to "
    "answer an update, or a site to confirm primary, before it moves on anyway.",
}

UNITS = {
    "DnsSteering.ttl": "seconds",
    "Policy.graceful_ttl_s": "seconds",
    "BgpSite.table": "table id",
    "Policy.max_switches_per_hour": "per hour",
}


def models() -> dict[str, type[BaseModel]]:
    """Every model of the config, by class name (CheckBase included for its shared fields)."""
    found = {}
    for name in dir(model):
        value = getattr(model, name)
        if (
            isinstance(value, type)
            and issubclass(value, BaseModel)
            and value.__module__.startswith("failover.config.")
            and value.model_fields
        ):
            found[name] = value
    return found


def owner(cls: type[BaseModel], field: str) -> str:
    """The class whose meaning covers `field` of `cls` (a check's shared fields: CheckBase)."""
    if issubclass(cls, model.CheckBase) and field in model.CheckBase.model_fields:
        return "CheckBase"
    return cls.__name__


def meaning(cls: type[BaseModel], field: str) -> str:
    return MEANINGS[f"{owner(cls, field)}.{field}"]


def unit_of(cls: type[BaseModel], field: str) -> str:
    key = f"{owner(cls, field)}.{field}"
    if key in UNITS:
        return UNITS[key]
    return "seconds" if field.endswith("_s") else ""


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema (draft 2020-12), every property with its meaning and unit."""
    schema = model.Config.model_json_schema()
    classes = models()
    for name, definition in [("Config", schema), *schema.get("$defs", {}).items()]:
        cls = classes.get(name)
        if cls is None:
            continue
        for field, prop in definition.get("properties", {}).items():
            unit = unit_of(cls, field)
            prop["description"] = meaning(cls, field) + (f" Unit: {unit}." if unit else "")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://failover.invalid/schema/cluster.json",
        **{k: v for k, v in schema.items() if k != "$schema"},
    }


def type_name(annotation: Any) -> str:
    """A short readable type: `float`, `list[string]`, `"a" | "b"`, `map of string to Site`."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        inner = type_name(args[0])
        discriminated = [a for a in args[1:] if isinstance(a, FieldInfo) and a.discriminator]
        if discriminated:
            return f"{inner} (by {discriminated[0].discriminator})"
        return inner + _constraints(
            [m for a in args[1:] if isinstance(a, FieldInfo) for m in a.metadata]
        )
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        names = [type_name(a) for a in args if a is not type(None)]
        text = " | ".join(names)
        return text + " | null" if type(None) in args else text
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, str(annotation)
    )


def _constraints(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"<= {item.le}")
        elif isinstance(item, annotated_types.MinLen):
            parts.append(f"at least {item.min_length}")
        elif getattr(item, "pattern", None):
            parts.append(f"matching `{item.pattern}`")
    return f" ({', '.join(parts)})" if parts else ""


def _field_type(info: FieldInfo) -> str:
    return type_name(info.annotation) + _constraints(list(info.metadata))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(defaults)"
    return f"`{json.dumps(value)}`"


def _order() -> list[tuple[str, list[str]]]:
    """Models in the order a reader meets them from the top of the file, with their paths."""
    paths: dict[str, list[str]] = {"Config": ["(top level)"]}
    queue: list[tuple[type[BaseModel], str]] = [(model.Config, "")]
    while queue:
        cls, prefix = queue.pop(0)
        for field, info in cls.model_fields.items():
            for child, suffix in _models_in(info.annotation):
                path = f"{prefix}{field}{suffix}"
                seen = paths.setdefault(child.__name__, [])
                if not seen:
                    queue.append((child, path + "."))
                seen.append(path)
    return list(paths.items())


def _models_in(annotation: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, suffix)]
    if origin is dict:
        return _models_in(args[1], suffix + ".<name>")
    if origin is list:
        return _models_in(args[0], suffix + "[]")
    if origin is typing.Annotated:
        return _models_in(args[0], suffix)
    found = []
    for arg in args:
        found += _models_in(arg, suffix)
    return found


def markdown() -> str:
    """docs/config.md: one table per model, every field with type, default, unit, meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the models by `failover schema --markdown`; do not edit by hand "
        "(tests/config/test_reference.py checks it is current). `failover schema` prints "
        "the same as a JSON Schema for editors and yaml-language-server. Durations are in "
        "seconds; unknown keys are errors. See examples/two-dc.yaml for a whole file.",
        "",
    ]
    classes = models()
    order = _order()
    first_check = next(
        i for i, (name, _) in enumerate(order) if issubclass(classes[name], model.CheckBase)
    )
    order.insert(first_check, ("CheckBase", ["every check"]))
    for name, paths in order:
        cls = classes[name]
        lines += [f"## {name}", "", f"At: {', '.join(f'`{p}`' for p in paths)}."]
        if cls is not model.CheckBase and issubclass(cls, model.CheckBase):
            lines += ["", "Also takes every field of [CheckBase](#checkbase)."]
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(("Base of", "A base", "Usage docs")):
            lines += ["", " ".join(doc.split())]
        lines += [
            "",
            "| field | type | default | unit | meaning |",
            "| --- | --- | --- | --- | --- |",
        ]
        for field, info in cls.model_fields.items():
            if cls is not model.CheckBase and owner(cls, field) == "CheckBase":
                continue
            cells = [
                f"`{field}`",
                _field_type(info),
                _default(info),
                unit_of(cls, field),
                meaning(cls, field),
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
