"""Listening sockets for `serve` and `sample-site`: bound before anything is announced, refused in one line."""

from __future__ import annotations

import errno
import socket


class ListenError(OSError):
    """The address cannot be listened on; the message is one line for the user."""


def why_not(host: str, port: int, exc: OSError) -> str:
    """`127.0.0.1:8000 is already in use (...)`: what went wrong and what to do, in one line."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the port is already in use (another server?); choose another --port"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges); choose another --port"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0 = any free port); ListenError when the address is taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(why_not(host, port, exc)) from None
    except OverflowError:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: not a port number (0-65535)") from None
    sock.set_inheritable(True)
    return sock
