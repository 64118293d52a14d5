"""The audit trail's hash chain: how an entry's hash is made, and how a chain is verified.

Each entry's hash covers its sequence number, time, kind, payload and the previous entry's
hash, so changing, removing or reordering any retained entry breaks the chain. Retention drops
the oldest entries: verification then starts at the oldest retained entry (its `prev_hash` is
taken on trust) and, given the stored head, also detects entries cut from the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from failover.coord.base import AuditEntry, AuditRecord

GENESIS = "0" * 64


def entry_hash(seq: int, at: float, kind: str, payload: dict[str, Any], prev_hash: str) -> str:
    body = {"seq": seq, "at": at, "kind": kind, "payload": payload, "prev_hash": prev_hash}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def chain(records: Sequence[AuditRecord], head_seq: int, head_hash: str) -> list[AuditEntry]:
    """Number and hash `records` after the head (`head_seq`, `head_hash`)."""
    entries: list[AuditEntry] = []
    seq, prev = head_seq, head_hash
    for record in records:
        seq += 1
        payload = json.loads(json.dumps(record.payload, default=str))  # what storage gives back
        digest = entry_hash(seq, record.at, record.kind, payload, prev)
        entries.append(AuditEntry(seq, record.at, record.kind, payload, prev, digest))
        prev = digest
    return entries


def verify_chain(entries: Sequence[AuditEntry], head: tuple[int, str] | None = None) -> list[str]:
    """Every problem found in a retained chain, oldest first; [] when it verifies.

    `head` is the stored (seq, hash) of the newest entry, if known.
    """
    problems: list[str] = []
    previous: AuditEntry | None = None
    for entry in entries:
        expected = entry_hash(entry.seq, entry.at, entry.kind, entry.payload, entry.prev_hash)
        if entry.hash != expected:
            problems.append(f"entry {entry.seq}: content does not match its hash")
        if previous is None:
            if entry.seq == 1 and entry.prev_hash != GENESIS:
                problems.append("entry 1: does not start from the genesis hash")
        else:
            if entry.seq != previous.seq + 1:
                problems.append(f"entry {entry.seq}: follows entry {previous.seq} (gap)")
            if entry.prev_hash != previous.hash:
                problems.append(f"entry {entry.seq}: does not chain to entry {previous.seq}")
        previous = entry
    if head is not None and head[0] > 0:
        if previous is None:
            problems.append(f"head names entry {head[0]} but no entry is retained")
        elif (previous.seq, previous.hash) != head:
            problems.append(f"head names entry {head[0]} but the newest is {previous.seq}")
    return problems


def logged_heads(lines: Iterable[str]) -> dict[int, str]:
    """The audit heads daemons logged as they appended ({seq: hash}), from JSON log lines."""
    heads: dict[int, str] = {}
    for line in lines:
        if '"audit_seq"' not in line:
            continue
        try:
            record = json.loads(line)
            heads[int(record["audit_seq"])] = str(record["audit_hash"])
        except (ValueError, KeyError, TypeError):
            continue
    return heads


def check_heads(
    entries: Sequence[AuditEntry], head: tuple[int, str] | None, heads: dict[int, str]
) -> list[str]:
    """Problems between the retained chain and heads logged outside ZooKeeper: whoever can
    write ZooKeeper can rewrite and rehash the whole chain, but not the daemons' logs."""
    by_seq = {entry.seq: entry for entry in entries}
    problems = []
    for seq, logged in sorted(heads.items()):
        entry = by_seq.get(seq)
        if entry is not None and entry.hash != logged:
            problems.append(
                f"entry {seq}: its hash is not the one a daemon logged when it "
                "was appended (the chain was rewritten)"
            )
        if head is not None and seq > head[0]:
            problems.append(f"head names entry {head[0]}, but a daemon logged entry {seq}")
    return problems
