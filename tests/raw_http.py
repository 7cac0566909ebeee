"""Reading one HTTP response off a raw socket, for tests that must send bytes no client library would
(a huge Content-Length with a short body, a body held back after ``Expect: 100-continue``)."""

from __future__ import annotations

import re
import socket


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the next response (a 100 Continue counts as one); status 0 if none."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            if data.startswith(b"HTTP/1.1 100"):
                break
            match = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
            if match and len(data) >= end + 4 + int(match.group(1)):
                break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]
