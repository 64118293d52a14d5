"""Coordination: the `Coordinator` interface, on ZooKeeper (kazoo) and in memory."""

from __future__ import annotations

from failover.coord.audit import GENESIS, verify_chain
from failover.coord.base import (
    NO_NODE,
    AlreadyDone,
    AlreadyUsed,
    AuditEntry,
    AuditRecord,
    Callback,
    CommandResult,
    CommitResult,
    Coordinator,
    CoordinatorError,
    CoordinatorUnavailable,
    DuplicateInstance,
    Leadership,
    Member,
    NotAuthorized,
    NotLeader,
    Role,
    SessionState,
    Topic,
    UntrustedNode,
    VersionConflict,
)
from failover.coord.commands import MALFORMED_BY, malformed, parse_command
from failover.coord.memory import MemoryCoordinator, MemoryStore

__all__ = [
    "GENESIS",
    "MALFORMED_BY",
    "NO_NODE",
    "AlreadyDone",
    "AlreadyUsed",
    "AuditEntry",
    "AuditRecord",
    "Callback",
    "CommandResult",
    "CommitResult",
    "Coordinator",
    "CoordinatorError",
    "CoordinatorUnavailable",
    "DuplicateInstance",
    "Leadership",
    "Member",
    "MemoryCoordinator",
    "MemoryStore",
    "NotAuthorized",
    "NotLeader",
    "Role",
    "SessionState",
    "Topic",
    "UntrustedNode",
    "VersionConflict",
    "malformed",
    "parse_command",
    "verify_chain",
]
