"""Refuse every network connection except loopback, in the test process and the ones it starts.

The README promises that no code path reads the network (models ship with the project or come
from PyPI packages). ``install()`` makes that checkable: a connection or name lookup to anything
but this machine raises :class:`NetworkAccessError`, so a test that reaches the network fails.
``tests/conftest.py`` installs it for the suite and puts this folder on ``PYTHONPATH`` so that
``sitecustomize.py`` installs it in every Python subprocess too (``docqa ui``, Streamlit).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_installed = False
# Every refused attempt, also when the caller catches the error (libraries retry or fall back
# quietly); with DOCQA_NETWORK_LOG set, also appended to that file (for subprocesses).
attempts: list[str] = []


class NetworkAccessError(OSError):
    """Raised instead of reaching another machine."""


def _is_local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES or host == socket.gethostname():
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _check(address: Any, family: int) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_local(host):
        _refuse(f"connection to {address!r}")


def _refuse(what: str) -> None:
    attempts.append(what)
    log = os.environ.get("DOCQA_NETWORK_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {what}\n")
    raise NetworkAccessError(f"network access refused in tests: {what}")


def install() -> None:
    """Patch ``socket`` so that only loopback and Unix sockets connect (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        _check(address, self.family)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(address, self.family)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        _check(args[-1], self.family)
        return real_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_local(host):
            _refuse(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
