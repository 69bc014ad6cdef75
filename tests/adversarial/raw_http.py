"""HTTP/1.1 requests written byte by byte, so a test can send what no client library would."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    address: str,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    host: bytes | None = None,
    timeout: float = 10.0,
) -> Answer:
    """Send one request (``Connection: close``) and read the whole answer."""
    hostname, _, port = address.rpartition(":")
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + (host or address.encode())]
    for name, value in headers or []:
        lines.append(name + b": " + value)
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close", b"", b""]
    with socket.create_connection((hostname, int(port)), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(lines) + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = status_line.split(" ", 2)
    parsed: dict[str, str] = {}
    for line in header_lines:
        field, _, text = line.partition(":")
        parsed[field.strip().lower()] = text.strip()
    if parsed.get("transfer-encoding") == "chunked":
        rest = _unchunk(rest)
    return Answer(int(status), reason[0] if reason else "", parsed, rest)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
