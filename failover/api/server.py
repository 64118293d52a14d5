"""The HTTP API of one daemon (aiohttp), on the instance's `api` address.

    GET  /health       200 {"instance", "site", "session", "leader", "cycles"} while the loop runs
    GET  /status       the status document (as `failover status --json`); 503 without ZooKeeper
    GET  /metrics      Prometheus exposition from the daemon's own registry
    POST /switchover   Escher-signed; queues a switchover; 202 {"command_id"}
    POST /freeze       Escher-signed; queues a freeze
    POST /unfreeze     Escher-signed; queues an unfreeze

Every request whose signature verified, accepted or not, is queued as a `note` command so
that the leader writes it to the audit trail (who, what, from where, the outcome). Refused
requests whose signature did not verify are counted per source and reason and recorded once
per `refusal_interval_s` apart from the audit trail (`refusals`), so that no flood of them
can displace a decision or an accepted command. Refusals answer 401 (no, bad or expired
signature), 403 (replayed, or no keys configured), 429 (this source failed too often: wait),
400 (malformed body after a valid signature), 408/413/414 (too slow, too large), 503 (the
coordinator cannot take the command).

Untrusted input is bounded before it is parsed: request line and header sizes, header count,
body size and the time the body may take; the connections themselves by `connections`.
`/status` without credentials shows no key ids (every `by` is redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError

from failover.api.auth import ApiKeysError, Outcome, RequestGuard, read_keys
from failover.api.commands import BadRequest, command_from_body
from failover.api.connections import ConnectionGuard, GuardedSite
from failover.api.limits import source_of
from failover.api.metrics import CONTENT_TYPE, DaemonMetrics, audit_problems
from failover.api.refusals import RefusalCounter
from failover.api.totp import TOTP_HEADER, SecondFactor, TotpError, read_totp_secrets
from failover.config.model import split_host_port
from failover.coord import AlreadyUsed, CoordinatorError
from failover.core.model import Command
from failover.status import build_status

if TYPE_CHECKING:
    from failover.daemon.runner import Daemon

log = logging.getLogger("failover.api")
MAX_BODY = 64 * 1024
MAX_PATH = 512
HANDLER_ARGS: dict[str, Any] = {
    "max_line_size": 4096,
    "max_field_size": 4096,
    "max_headers": 32,
    "keepalive_timeout": 15.0,
}
STATUS_CACHE_S = 0.5
AUDIT_VERIFY_S = 60.0  # the audit chain behind failover_audit_chain_ok is checked this often
NOTE_QUEUE = 1000
WRITES = ("switchover", "freeze", "unfreeze")


class Api:
    """The handlers and what they share: the daemon, the request guard, the audit queue."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        existing = getattr(daemon, "metrics", None)
        self.metrics: DaemonMetrics = (
            existing
            if isinstance(existing, DaemonMetrics)
            else DaemonMetrics(daemon.instance, daemon.site)
        )
        self.address = daemon.config.instances[daemon.instance].api
        self.notes: asyncio.Queue[Command] = asyncio.Queue(NOTE_QUEUE)
        self.refused = RefusalCounter()
        options = daemon.config.cluster.api
        self.connections = ConnectionGuard(options.max_connections, options.header_timeout_s)
        self._guard: RequestGuard | None = None
        self._keys_seen: tuple[str | None, float] = (None, -1.0)
        self._keys_problem = ""
        self._second: SecondFactor | None = None
        self._totp_seen: tuple[str | None, float] = (None, -1.0)
        self._status: tuple[float, dict[str, Any] | None, str] = (0.0, None, "")
        self._audit_checked = -AUDIT_VERIFY_S
        self._status_lock = asyncio.Lock()

    # --- read endpoints ----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        daemon = self.daemon
        body = {
            "instance": daemon.instance,
            "site": daemon.site,
            "session": daemon.coordinator.session_state(),
            "leader": daemon.leadership is not None,
            "cycles": daemon.cycles,
        }
        return web.json_response(body, status=503 if daemon.stopping else 200)

    async def status(self, request: web.Request) -> web.Response:
        doc, problem = await self._read_status()
        if doc is None:
            return web.json_response(
                {
                    "error": f"cannot read the cluster's state: {problem}",
                    "instance": self.daemon.instance,
                },
                status=503,
            )
        return web.json_response(redacted(doc, self.guard().keys))

    async def metrics_page(self, request: web.Request) -> web.Response:
        doc, _ = await self._read_status()
        daemon = self.daemon
        self.metrics.update(
            doc,
            leading=daemon.leadership is not None,
            term=daemon.leadership.term if daemon.leadership else None,
            cycles=daemon.cycles,
            session=daemon.coordinator.session_state(),
        )
        await self._verify_audit()
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _verify_audit(self) -> None:
        """At most every AUDIT_VERIFY_S, verify the audit chain for `/metrics`."""
        if time.monotonic() - self._audit_checked < AUDIT_VERIFY_S:
            return
        self._audit_checked = time.monotonic()
        try:
            problems = await asyncio.to_thread(audit_problems, self.daemon.coordinator)
        except CoordinatorError:
            return  # unreadable says nothing about the chain; the last outcome stands
        except Exception:  # a bug or an untranslated client error must not break /metrics
            log.exception("audit chain check failed")
            return
        if problems:
            log.error("audit chain broken: %s", "; ".join(problems[:3]))
        self.metrics.audit_checked(not problems, time.time())

    async def _read_status(self) -> tuple[dict[str, Any] | None, str]:
        async with self._status_lock:  # one read at a time; a burst shares it
            at, doc, problem = self._status
            if time.monotonic() - at < STATUS_CACHE_S:
                return doc, problem
            try:
                doc = await asyncio.to_thread(
                    build_status, self.daemon.coordinator, self.daemon.config
                )
                problem = ""
            except CoordinatorError as exc:
                doc, problem = None, str(exc) or type(exc).__name__
            self._status = (time.monotonic(), doc, problem)
            return doc, problem

    # --- write endpoints ---------------------------------------------------------------------

    async def write(self, request: web.Request) -> web.Response:
        kind = request.path.strip("/")
        source = source_of(request.remote)
        what = f"{request.method} {request.path} from {source}"
        options = self.daemon.config.cluster.api
        if len(request.raw_path) > MAX_PATH:
            return self._refuse(kind, what, source, Outcome(414, None, "the path is too long"))
        try:
            async with asyncio.timeout(options.body_timeout_s):
                body = (await request.read()).decode("utf-8")
        except TimeoutError:
            return self._refuse(kind, what, source, Outcome(408, None, "the body was too slow"))
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(
                kind, what, source, Outcome(413, None, f"the body is larger than {MAX_BODY} bytes")
            )
        except UnicodeDecodeError:
            return self._refuse(kind, what, source, Outcome(400, None, "the body is not UTF-8"))
        except (ConnectionError, HttpProcessingError, ClientError) as exc:  # the client left
            return self._refuse(
                kind,
                what,
                source,
                Outcome(400, None, f"the body could not be read: {type(exc).__name__}"),
            )
        guard = self.guard()
        outcome = guard.check(
            request.method, request.raw_path, list(request.headers.items()), body, source
        )
        if not outcome.accepted:
            return self._refuse(kind, what, source, outcome)
        key_id = outcome.key_id or "anonymous"
        try:
            command = command_from_body(kind, body, key_id, self.daemon.config, time.time())
        except BadRequest as exc:
            return self._refuse(kind, what, source, Outcome(400, key_id, str(exc)), verified=True)
        second = self.second_factor()
        if second.required(kind, command.force):
            problem = second.check(key_id, request.headers.get(TOTP_HEADER), outcome.signed_headers)
            if problem is not None:
                return self._refuse(
                    kind, what, source, Outcome(problem[0], key_id, problem[1]), verified=True
                )
        try:
            command_id = await asyncio.to_thread(
                self.daemon.coordinator.submit, command, outcome.signature, outcome.valid_until
            )
        except AlreadyUsed:
            return self._refuse(kind, what, source, guard.replayed(source, outcome))
        except Exception as exc:  # CoordinatorError, or anything else: the caller must know
            return self._refuse(
                kind,
                what,
                source,
                Outcome(
                    503, key_id, f"the command could not be queued: {exc or type(exc).__name__}"
                ),
                verified=True,
            )
        guard.remember(outcome)
        self._note(key_id, f"{what}: accepted as {command_id} ({_describe(command)})")
        self.metrics.api_requests.labels(kind, "accepted").inc()
        log.info(
            f"API {kind} by {key_id} accepted as {command_id}",
            extra={"fields": {"command": command_id, "by": key_id}},
        )
        return web.json_response(
            {
                "command_id": command_id,
                "kind": command.kind,
                "group": command.group,
                "site": command.site,
                "by": key_id,
            },
            status=202,
        )

    def _refuse(
        self, kind: str, what: str, source: str, outcome: Outcome, verified: bool = False
    ) -> web.Response:
        """Answer a refusal. A request whose signature verified is audited one by one;
        any other is counted (`RefusalCounter`), never queued for the audit trail."""
        who = outcome.key_id or "anonymous"
        if verified:
            self._note(who, f"{what}: refused {outcome.status}: {outcome.reason}")
            log.warning(f"API {kind} by {who} refused ({outcome.status}): {outcome.reason}")
        else:
            self.refused.add(source, outcome.key_id, kind, outcome.reason, time.time())
            log.debug(f"API {kind} from {source} refused ({outcome.status}): {outcome.reason}")
        self.metrics.api_requests.labels(kind, f"refused_{outcome.status}").inc()
        return web.json_response(
            {"error": outcome.reason, "status": outcome.status}, status=outcome.status
        )

    def _note(self, who: str, text: str) -> None:
        note = Command("", "note", f"api:{who}", text[:1000], requested_at=time.time())
        try:
            self.notes.put_nowait(note)
        except asyncio.QueueFull:
            log.error(f"audit queue full: dropped a note: {text}")

    async def refusal_worker(self) -> None:
        """Once per interval: record (and log) the counts of refused requests."""
        while True:
            await asyncio.sleep(self.daemon.config.cluster.api.refusal_interval_s)
            await self.flush_refusals()

    async def flush_refusals(self) -> None:
        summary = self.refused.take(self.daemon.instance, time.time())
        if summary is None:
            return
        top = ", ".join(
            f"{r['count']} from {r['source']} ({r['reason']})" for r in summary["rows"][:3]
        )
        log.warning(
            f"API refused {summary['refused']} unverified requests since "
            f"{summary['from']:.0f}: {top}",
            extra={"fields": {"refused": summary["refused"]}},
        )
        try:
            await asyncio.to_thread(self.daemon.coordinator.record_refusals, summary)
        except Exception as exc:  # the worker must outlive any failure; the log has it
            log.error(f"could not record refused API requests: {exc or type(exc).__name__}")

    async def audit_worker(self) -> None:
        """Queue each note as a command for the leader to record (one at a time, in order)."""
        while True:
            note = await self.notes.get()
            try:
                await asyncio.to_thread(self.daemon.coordinator.submit, note)
            except CoordinatorError as exc:
                log.error(
                    f"could not queue an API note for the audit trail: "
                    f"{exc or type(exc).__name__}: {note.reason}"
                )
            except Exception:  # a bug: seen with its traceback; the next notes still go
                log.exception(f"API note worker failed on: {note.reason}")
            finally:
                self.notes.task_done()

    def second_factor(self) -> SecondFactor:
        """The TOTP checker, with its secrets re-read when the file changed."""
        options = self.daemon.config.cluster.api
        path = options.totp_file
        mtime = -1.0
        if path is not None:
            with contextlib.suppress(OSError):
                mtime = Path(path).stat().st_mtime
        if self._second is None or self._totp_seen != (path, mtime):
            secrets: dict[str, str] = {}
            if path is not None:
                try:
                    secrets = read_totp_secrets(path)
                except TotpError as exc:
                    log.error(f"{exc}; writes that need a second factor are refused")
            if self._second is None:
                self._second = SecondFactor(options, secrets)
            else:  # keep used codes and failure counts
                self._second.options, self._second.secrets = options, secrets
            self._totp_seen = (path, mtime)
        return self._second

    def guard(self) -> RequestGuard:
        """The request guard, with the keys file re-read when it changed."""
        options = self.daemon.config.cluster.api
        path = options.keys_file
        mtime = -1.0
        if path is not None:
            with contextlib.suppress(OSError):
                mtime = Path(path).stat().st_mtime
        if self._guard is None or self._keys_seen != (path, mtime):
            keys: dict[str, str] = {}
            if path is not None:
                try:
                    keys = read_keys(path)
                    self._keys_problem = ""
                except ApiKeysError as exc:
                    if str(exc) != self._keys_problem:
                        log.error(f"{exc}; signed writes are refused until it is fixed")
                    self._keys_problem = str(exc)
            if self._guard is None:
                self._guard = RequestGuard(options, self.address, keys)
            else:  # keep replay memory and failure counts across a key change
                self._guard.configure(options, keys)
            self._keys_seen = (path, mtime)
        return self._guard


def _describe(command: Command) -> str:
    parts: list[str] = [command.kind]
    if command.site:
        parts.append(f"to {command.site}")
    parts.append(f"group {command.group or 'all'}")
    if command.force:
        parts.append("forced")
    if command.at is not None:
        parts.append(f"at {command.at:.0f}")
    if command.expires_s is not None:
        parts.append(f"expires after {command.expires_s:g} s")
    if command.reason:
        parts.append(f"reason: {command.reason}")
    return ", ".join(parts)


API_KEY: web.AppKey[Api] = web.AppKey("api", Api)


def redacted(value: Any, key_ids: Iterable[str] = ()) -> Any:
    """The status document for anyone: no key ids. Every `*by` field is replaced, and each
    key id named in a sentence (the API's key ids, and `api:` identities) is replaced."""
    names = sorted(set(key_ids), key=len, reverse=True)
    pattern = re.compile(
        r"(?<![\w-])(?:api:)?(?:" + "|".join(map(re.escape, names)) + r")(?![\w-])"
        if names
        else r"(?<![\w-])api:[\w-]+"
    )

    def clean(item: Any, field: str) -> Any:
        if isinstance(item, dict):
            return {
                k: ("redacted" if k.endswith("by") and v else clean(v, k)) for k, v in item.items()
            }
        if isinstance(item, list):
            return [clean(element, field) for element in item]
        if isinstance(item, str) and field != "cluster":
            return pattern.sub("(operator)", item)
        return item

    return clean(value, "")


def build_app(daemon: Daemon) -> web.Application:
    api = Api(daemon)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[api.connections.middleware])
    app[API_KEY] = api
    app.router.add_get("/health", api.health)
    app.router.add_get("/status", api.status)
    app.router.add_get("/metrics", api.metrics_page)
    for kind in WRITES:
        app.router.add_post(f"/{kind}", api.write)

    async def worker(app: web.Application) -> Any:
        tasks = [
            asyncio.create_task(api.audit_worker(), name="api-audit"),
            asyncio.create_task(api.refusal_worker(), name="api-refusals"),
        ]
        yield
        with contextlib.suppress(asyncio.TimeoutError):  # flush what is queued, briefly
            await asyncio.wait_for(api.notes.join(), 2.0)
            await asyncio.wait_for(api.flush_refusals(), 2.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(worker)
    return app


def server_tls(daemon: Daemon) -> ssl.SSLContext | None:
    """The API's TLS context (None: plain HTTP); OSError or SSLError when files are bad."""
    tls = daemon.config.cluster.api.tls
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def start_api(daemon: Daemon) -> web.AppRunner:
    """Serve the API on the instance's `api` address; `await runner.cleanup()` stops it.

    A daemon whose address cannot be bound, or whose TLS files cannot be used, keeps running
    without an API (and says so): failover must not depend on the operator interface.
    """
    app = build_app(daemon)
    runner = web.AppRunner(app, access_log=None, **HANDLER_ARGS)
    await runner.setup()
    address = daemon.config.instances[daemon.instance].api
    host, port = split_host_port(address)
    try:
        context = server_tls(daemon)
        await GuardedSite(
            runner, host, port, app[API_KEY].connections, ssl_context=context, reuse_address=True
        ).start()
    except (OSError, ssl.SSLError, ValueError) as exc:
        log.error(f"API not served on {address}: {getattr(exc, 'strerror', None) or exc}")
    else:
        log.info(f"API listening on {'https' if context else 'http'}://{address}")
    return runner
