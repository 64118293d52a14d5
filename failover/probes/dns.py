"""`dns` checks (dnspython): ask one server for a name; optionally compare the answer."""

from __future__ import annotations

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from failover.config.model import DnsCheck, split_host_port
from failover.core.model import CheckResult
from failover.probes.base import Probe, ProbeContext


class DnsProbe(Probe):
    """Query `check.query`/`record_type` at the endpoint over UDP (TCP when truncated).

    With `expect`, the set of answers must equal the expected set (order does not matter):
    a failover check wants to know the name points exactly where it should.
    """

    def __init__(self, check: DnsCheck, context: ProbeContext) -> None:
        self.check = check
        self.rdtype = dns.rdatatype.from_text(check.record_type)
        self.expect = {_normal(value) for value in check.expect}

    async def run(self, endpoint: str) -> CheckResult:
        check = self.check
        host, port = split_host_port(endpoint)
        query = dns.message.make_query(check.query, self.rdtype)
        try:
            response = await dns.asyncquery.udp(query, host, port=port, timeout=check.timeout_s)
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(query, host, port=port, timeout=check.timeout_s)
        except dns.exception.Timeout:
            raise TimeoutError from None
        except dns.exception.DNSException as exc:
            return CheckResult(False, reason=f"bad DNS answer from {endpoint}: {exc}")
        asked = f"{check.query} {check.record_type}"
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            return CheckResult(
                False, reason=f"DNS {dns.rcode.to_text(rcode)} for {asked} from {endpoint}"
            )
        answers = sorted(
            _normal(rdata.to_text())
            for rrset in response.answer
            if rrset.rdtype == self.rdtype
            for rdata in rrset
        )
        if not answers:
            return CheckResult(False, reason=f"no answer for {asked} from {endpoint}")
        shown = ", ".join(answers)
        if self.expect and set(answers) != self.expect:
            return CheckResult(
                False,
                reason=f"{asked} is {shown} at {endpoint}, expected "
                f"{', '.join(sorted(self.expect))}",
            )
        return CheckResult(True, reason=f"{asked} is {shown} at {endpoint}")


def _normal(value: str) -> str:
    return value.strip().lower()
