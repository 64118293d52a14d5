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


def netns_socket(netns: str | None, family: int, kind: int) -> socket.socket:
    """A new socket in `netns` (None: the current namespace)."""
    if netns is None:
        return socket.socket(family, kind)
    try:
        target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
    except OSError as exc:
        raise OSError(exc.errno, f"network namespace {netns}: {exc.strerror}") from None
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
