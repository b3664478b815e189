"""The ingestor's socket protocol (docs/socket-protocol.md) from Python, for tests: one request, one answer."""

from __future__ import annotations

import socket
import struct

# Operation codes (SocketOperation).
PING, HEALTH, GET, LIST_KEYS, OWNER, ROUTING_TABLE, METRICS, PUBLISH, STOP = range(1, 10)


def string(s: str) -> bytes:
    """A protocol string: u32 big-endian length, then UTF-8."""
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def call(path: str, op: int, body: bytes = b"", timeout: float = 5, request_id: int = 7) -> tuple[int, bytes]:
    """Sends one request frame on a new connection; returns (status, response body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(struct.pack(">IBBIBB", 8 + len(body), 1, 0, request_id, op, 0) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed")
            buf += chunk
    _, _, _, _, _, status = struct.unpack(">IBBIBB", buf[:12])
    return status, buf[12:]
