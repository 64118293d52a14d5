"""What every config model shares: strictness and the plain value types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ServiceKind = Literal["app", "mail", "db", "lb", "firewall", "generic"]
ServiceRole = Literal["critical", "degraded"]
SiteName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
Seconds = Annotated[float, Field(gt=0)]


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
