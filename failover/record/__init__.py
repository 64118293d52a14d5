"""Recording the leader's decision inputs, and replaying them (`failover replay`)."""

from __future__ import annotations
