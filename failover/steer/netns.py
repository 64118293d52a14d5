"""Sockets opened inside a named network namespace, from a process that lives outside it.

`setns(2)` moves only the calling thread; the socket keeps the namespace it was created in, so
the thread switches in, opens the socket and switches straight back.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.Lock()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def enter_netns(netns: str) -> None:
    """Move the calling thread (and the threads it starts later) into `netns` for good: for a
    worker thread that must do everything from inside it (a kazoo client's connections)."""
    target = _open(netns)
    try:
        _setns(target)
    finally:
        os.close(target)


def _open(netns: str) -> int:
    try:
        return os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
    except OSError as exc:
        raise OSError(exc.errno, f"network namespace {netns}: {exc.strerror}") from None


def netns_socket(netns: str | None, family: int, kind: int) -> socket.socket:
    """A new socket in `netns` (None: the current namespace)."""
    if netns is None:
        return socket.socket(family, kind)
    target = _open(netns)
    with _lock:
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.socket(family, kind)
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)
