"""`smtp` checks (aiosmtplib): the 220 banner, EHLO, optionally STARTTLS."""

from __future__ import annotations

import contextlib

import aiosmtplib

from failover.config.model import SmtpCheck, split_host_port
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext, explain, first_line


class SmtpProbe(Probe):
    """Read the banner, say EHLO, upgrade with STARTTLS when asked, then QUIT."""

    def __init__(self, check: SmtpCheck, context: ProbeContext) -> None:
        self.check = check
        self.tls = context.tls_context(check.tls) if check.starttls else None

    async def run(self, endpoint: str) -> CheckResult:
        check = self.check
        host, port = split_host_port(endpoint)
        client = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            local_hostname=check.ehlo_name,
            timeout=check.timeout_s,
            start_tls=False,
            tls_context=self.tls,
        )
        try:
            return await self._converse(client, endpoint)
        except aiosmtplib.SMTPConnectResponseError as exc:
            return CheckResult(False, reason=_banner_reason(exc.code, exc.message, endpoint))
        except aiosmtplib.SMTPHeloError as exc:
            return CheckResult(False, reason=f"SMTP EHLO answered {exc.code} by {endpoint}")
        except aiosmtplib.SMTPResponseException as exc:
            return CheckResult(
                False, reason=f"SMTP {exc.code} from {endpoint}: {first_line(exc.message)}"
            )
        except aiosmtplib.SMTPServerDisconnected:
            return CheckResult(False, reason=f"{endpoint} closed the SMTP connection")
        except aiosmtplib.SMTPConnectError as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            return CheckResult(False, reason=explain(cause, endpoint))
        finally:
            client.close()

    async def _converse(self, client: aiosmtplib.SMTP, endpoint: str) -> CheckResult:
        check = self.check
        banner = await client.connect()
        if banner.code != check.expect_banner:
            return CheckResult(False, reason=_banner_reason(banner.code, banner.message, endpoint))
        await client.ehlo()
        done = f"SMTP banner {banner.code}, EHLO ok"
        if check.starttls:
            if not client.supports_extension("starttls"):
                return CheckResult(False, reason=f"{endpoint} does not offer STARTTLS")
            await client.starttls(
                tls_context=self.tls, server_hostname=check.tls.server_name or None
            )
            await client.ehlo()
            done += ", STARTTLS ok"
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()
        return CheckResult(True, reason=f"{done} from {endpoint}")


def _banner_reason(code: int, message: str, endpoint: str) -> str:
    text = first_line(message, 80)
    return f"SMTP banner {code} from {endpoint}" + (f": {text}" if text else "")
