"""Coordination: the `Coordinator` interface, on ZooKeeper (kazoo) and in memory."""

from __future__ import annotations

from failover.coord.audit import GENESIS, verify_chain
from failover.coord.base import (
    NO_NODE,
    AlreadyDone,
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
    VersionConflict,
)
from failover.coord.memory import MemoryCoordinator, MemoryStore

__all__ = [
    "GENESIS",
    "NO_NODE",
    "AlreadyDone",
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
    "VersionConflict",
    "verify_chain",
]
