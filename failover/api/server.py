"""The HTTP API of one daemon (aiohttp), on the instance's `api` address.

    GET  /health       200 {"instance", "site", "session", "leader", "cycles"} while the loop runs
    GET  /status       the status document (as `failover status --json`); 503 without ZooKeeper
    GET  /metrics      Prometheus exposition from the daemon's own registry
    POST /switchover   Escher-signed; queues a switchover; 202 {"command_id"}
    POST /freeze       Escher-signed; queues a freeze
    POST /unfreeze     Escher-signed; queues an unfreeze

Every write attempt, accepted or refused, is queued as a `note` command so that the leader
writes it to the audit trail (who, what, from where, the outcome). Refusals answer 401 (no,
bad or expired signature), 403 (replayed, or no keys configured), 429 (key locked out), 400
(malformed body after a valid signature), 503 (the coordinator cannot take the command).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from failover.api.auth import ApiKeysError, Outcome, RequestGuard, read_keys
from failover.api.commands import BadRequest, command_from_body
from failover.api.metrics import CONTENT_TYPE, DaemonMetrics, audit_problems
from failover.config.model import split_host_port
from failover.coord import CoordinatorError
from failover.core.model import Command
from failover.status import build_status

if TYPE_CHECKING:
    from failover.daemon.runner import Daemon

log = logging.getLogger("failover.api")
MAX_BODY = 64 * 1024
STATUS_CACHE_S = 0.5
AUDIT_VERIFY_S = 60.0  # the audit chain behind failover_audit_chain_ok is checked this often
NOTE_QUEUE = 1000
WRITES = ("switchover", "freeze", "unfreeze")


class Api:
    """The handlers and what they share: the daemon, the request guard, the audit queue."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        existing = getattr(daemon, "metrics", None)
        self.metrics: DaemonMetrics = (existing if isinstance(existing, DaemonMetrics)
                                       else DaemonMetrics(daemon.instance, daemon.site))
        self.address = daemon.config.instances[daemon.instance].api
        self.notes: asyncio.Queue[Command] = asyncio.Queue(NOTE_QUEUE)
        self._guard: RequestGuard | None = None
        self._keys_seen: tuple[str | None, float] = (None, -1.0)
        self._keys_problem = ""
        self._status: tuple[float, dict[str, Any] | None, str] = (0.0, None, "")
        self._audit_checked = -AUDIT_VERIFY_S
        self._status_lock = asyncio.Lock()

    # --- read endpoints ----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        daemon = self.daemon
        body = {"instance": daemon.instance, "site": daemon.site,
                "session": daemon.coordinator.session_state(),
                "leader": daemon.leadership is not None, "cycles": daemon.cycles}
        return web.json_response(body, status=503 if daemon.stopping else 200)

    async def status(self, request: web.Request) -> web.Response:
        doc, problem = await self._read_status()
        if doc is None:
            return web.json_response({"error": f"cannot read the cluster's state: {problem}",
                                      "instance": self.daemon.instance}, status=503)
        return web.json_response(doc)

    async def metrics_page(self, request: web.Request) -> web.Response:
        doc, _ = await self._read_status()
        daemon = self.daemon
        self.metrics.update(doc, leading=daemon.leadership is not None,
                            term=daemon.leadership.term if daemon.leadership else None,
                            cycles=daemon.cycles, session=daemon.coordinator.session_state())
        await self._verify_audit()
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE})

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
                doc = await asyncio.to_thread(build_status, self.daemon.coordinator,
                                              self.daemon.config)
                problem = ""
            except CoordinatorError as exc:
                doc, problem = None, str(exc) or type(exc).__name__
            self._status = (time.monotonic(), doc, problem)
            return doc, problem

    # --- write endpoints ---------------------------------------------------------------------

    async def write(self, request: web.Request) -> web.Response:
        kind = request.path.strip("/")
        what = f"{request.method} {request.path_qs} from {request.remote or 'unknown'}"
        try:
            body = await request.text()
        except (web.HTTPRequestEntityTooLarge, UnicodeDecodeError) as exc:
            return self._refuse(kind, what, Outcome(400, None, f"unreadable body: {exc}"))
        outcome = self.guard().check(request.method, request.raw_path,
                                     list(request.headers.items()), body)
        if not outcome.accepted:
            return self._refuse(kind, what, outcome)
        key_id = outcome.key_id or "anonymous"
        now = time.time()
        try:
            command = command_from_body(kind, body, key_id, self.daemon.config, now)
        except BadRequest as exc:
            return self._refuse(kind, what, Outcome(400, key_id, str(exc)))
        try:
            command_id = await asyncio.to_thread(self.daemon.coordinator.submit, command)
        except CoordinatorError as exc:
            return self._refuse(kind, what, Outcome(503, key_id, f"the command could not be "
                                                     f"queued: {exc or type(exc).__name__}"))
        self._note(key_id, f"{what}: accepted as {command_id} ({_describe(command)})")
        self.metrics.api_requests.labels(kind, "accepted").inc()
        log.info(f"API {kind} by {key_id} accepted as {command_id}",
                 extra={"fields": {"command": command_id, "by": key_id}})
        return web.json_response({"command_id": command_id, "kind": command.kind,
                                  "group": command.group, "site": command.site,
                                  "by": key_id}, status=202)

    def _refuse(self, kind: str, what: str, outcome: Outcome) -> web.Response:
        who = outcome.key_id or "anonymous"
        self._note(who, f"{what}: refused {outcome.status}: {outcome.reason}")
        self.metrics.api_requests.labels(kind, f"refused_{outcome.status}").inc()
        log.warning(f"API {kind} by {who} refused ({outcome.status}): {outcome.reason}")
        return web.json_response({"error": outcome.reason, "status": outcome.status},
                                 status=outcome.status)

    def _note(self, who: str, text: str) -> None:
        note = Command("", "note", f"api:{who}", text[:1000], requested_at=time.time())
        try:
            self.notes.put_nowait(note)
        except asyncio.QueueFull:
            log.error(f"audit queue full: dropped a note: {text}")

    async def audit_worker(self) -> None:
        """Queue each note as a command for the leader to record (one at a time, in order)."""
        while True:
            note = await self.notes.get()
            try:
                await asyncio.to_thread(self.daemon.coordinator.submit, note)
            except CoordinatorError as exc:
                log.error(f"could not queue an API note for the audit trail: "
                          f"{exc or type(exc).__name__}: {note.reason}")
            except Exception:  # a bug: seen with its traceback; the next notes still go
                log.exception(f"API note worker failed on: {note.reason}")
            finally:
                self.notes.task_done()

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
            else:  # keep replay memory and lockouts across a key change
                self._guard.keys, self._guard.options = keys, options
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


def build_app(daemon: Daemon) -> web.Application:
    api = Api(daemon)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/health", api.health)
    app.router.add_get("/status", api.status)
    app.router.add_get("/metrics", api.metrics_page)
    for kind in WRITES:
        app.router.add_post(f"/{kind}", api.write)

    async def worker(app: web.Application) -> Any:
        task = asyncio.create_task(api.audit_worker(), name="api-audit")
        yield
        with contextlib.suppress(asyncio.TimeoutError):  # flush what is queued, briefly
            await asyncio.wait_for(api.notes.join(), 2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(worker)
    return app


async def start_api(daemon: Daemon) -> web.AppRunner:
    """Serve the API on the instance's `api` address; `await runner.cleanup()` stops it.

    A daemon whose address cannot be bound keeps running without an API (and says so):
    failover must not depend on the operator interface.
    """
    runner = web.AppRunner(build_app(daemon), access_log=None)
    await runner.setup()
    address = daemon.config.instances[daemon.instance].api
    host, port = split_host_port(address)
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
    except OSError as exc:
        log.error(f"API not served: cannot listen on {address}: {exc.strerror or exc}")
    else:
        log.info(f"API listening on {address}")
    return runner
