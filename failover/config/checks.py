"""The checks a service can be probed with, one model per kind."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from failover.config.base import Seconds, Strict


class CheckBase(Strict):
    interval_s: Seconds = 2.0
    timeout_s: Seconds = 1.0
    rise: int = Field(default=2, ge=1)
    fall: int = Field(default=3, ge=1)
    fast_interval_s: Seconds | None = None
    disable_file: str | None = None

    @model_validator(mode="after")
    def _timing(self) -> CheckBase:
        if self.timeout_s >= self.interval_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must be less than interval_s ({self.interval_s})"
            )
        if self.fast_interval_s is not None and self.fast_interval_s > self.interval_s:
            raise ValueError(
                f"fast_interval_s ({self.fast_interval_s}) must not exceed "
                f"interval_s ({self.interval_s})"
            )
        return self

    @property
    def recheck_s(self) -> float:
        """The interval while a verdict is changing: a faster re-check, as keepalived does."""
        if self.fast_interval_s is not None:
            return self.fast_interval_s
        return max(self.timeout_s, self.interval_s / 2)


class TlsClient(Strict):
    ca_file: str | None = None
    verify: bool = True
    server_name: str | None = None


class HttpCheck(CheckBase):
    type: Literal["http", "https"]
    path: str = "/"
    method: Literal["GET", "HEAD"] = "GET"
    host: str | None = None
    expect_status: list[int] = [200]
    body_regex: str | None = None
    headers: dict[str, str] = {}
    tls: TlsClient = TlsClient()
    follow_redirects: bool = False

    @field_validator("body_regex")
    @classmethod
    def _body_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


class SmtpCheck(CheckBase):
    type: Literal["smtp"]
    ehlo_name: str = "failover.invalid"
    starttls: bool = False
    expect_banner: int = 220
    tls: TlsClient = TlsClient()


class PostgresCheck(CheckBase):
    type: Literal["postgres"]
    database: str = "postgres"
    user: str = "postgres"
    password_file: str | None = None
    expect_role: Literal["primary", "standby", "any"] = "any"
    max_lag_s: Seconds | None = None


class TcpCheck(CheckBase):
    type: Literal["tcp"]
    send: str | None = None
    expect: str | None = None


class IcmpCheck(CheckBase):
    type: Literal["icmp"]


class DnsCheck(CheckBase):
    type: Literal["dns"]
    query: str
    record_type: str = "A"
    expect: list[str] = []

    @field_validator("record_type")
    @classmethod
    def _record_type(cls, record_type: str) -> str:
        import dns.rdatatype

        try:
            dns.rdatatype.from_text(record_type)
        except dns.rdatatype.UnknownRdatatype:
            raise ValueError(f"unknown DNS record type {record_type!r}") from None
        return record_type.upper()


class CommandCheck(CheckBase):
    type: Literal["command"]
    command: list[str] = Field(min_length=1)


Check = Annotated[
    HttpCheck | SmtpCheck | PostgresCheck | TcpCheck | IcmpCheck | DnsCheck | CommandCheck,
    Field(discriminator="type"),
]
