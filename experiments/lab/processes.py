"""Real Rumor node processes on this host: start, stop, SIGKILL, SIGSTOP/SIGCONT, restart.

``NodeProcess`` starts ``python -m rumor.node`` with a data directory,
waits for its ``node.ready`` line (with a deadline, never a sleep), and stops
it with SIGTERM (or SIGKILL). ``python`` runs another installation (an older
release in its own virtualenv) instead of this one. Given a ``cluster_secret``, every call on its
``channel`` carries it (as admin tools do); a call on it with one answer and no
deadline of its own gets ``DEFAULT_CALL_TIMEOUT_S``. Its stderr goes to ``<data_dir>.log``. An
optional command prefix (e.g. ``faketime``) wraps the node. Used by the
experiment harness and by the integration tests.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from rumor.node.server.admin_token import ADMIN_TOKEN_FILE, ADMIN_TOKEN_HEADER
from rumor.v1 import kv_pb2_grpc

MAX_MESSAGE_BYTES = 128 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
SECRET_HEADER = "x-rumor-cluster-secret"
# A call of the harness that names no deadline gets this one: a node that never
# answers fails the experiment or the test that called it, it does not hang it.
DEFAULT_CALL_TIMEOUT_S = 60.0
T = TypeVar("T")


class _WithMetadata(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
):
    """Adds fixed metadata (the cluster secret) to every call of a channel."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=(*(details.metadata or ()), *self.metadata))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class _Bounded(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
):
    """Gives every call with one answer that names no deadline ``DEFAULT_CALL_TIMEOUT_S``
    (streamed answers, Watch, keep theirs: they may rightly last)."""

    @staticmethod
    def _details(details: Any) -> Any:
        if details.timeout is not None:
            return details
        return details._replace(timeout=DEFAULT_CALL_TIMEOUT_S)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class NodeProcess:
    def __init__(
        self,
        data_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        cluster_secret: str | None = None,
        python: str = sys.executable,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.python = python
        self.args = list(args)
        self.env = env
        self.prefix = list(prefix)
        self.cluster_secret = cluster_secret
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.http = ""
        self.node_id = ""
        self._channel: grpc.Channel | None = None
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")

    def command(self) -> list[str]:
        return [
            *self.prefix,
            self.python,
            "-m",
            "rumor.node",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.address or "127.0.0.1:0",  # a restart keeps the port clients know
            "--log-format",
            "json",
            *self.args,
        ]

    def start(self, timeout: float = 30.0) -> NodeProcess:
        env = {**os.environ, **(self.env or {})}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=subprocess.PIPE, stderr=log, env=env
            )
        ready = self._read_ready(timeout)
        self.address = ready["listen"]
        self.node_id = ready["node_id"]
        self.http = ready.get("http") or ""
        return self

    def _read_ready(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        buffered = b""
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.1):
                    if self.process.poll() is not None:
                        break
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffered += chunk
                for line in buffered.splitlines():
                    if line.startswith(b"{"):
                        event: dict[str, Any] = json.loads(line)
                        if event.get("event") == "node.ready":
                            return event
        finally:
            selector.close()
        self.kill()
        raise RuntimeError(f"node did not become ready; its log:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return "(no log)"

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            channel = grpc.intercept_channel(
                grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS), _Bounded()
            )
            if self.cluster_secret:
                secret = _WithMetadata(((SECRET_HEADER, self.cluster_secret),))
                channel = grpc.intercept_channel(channel, secret)
            elif (self.data_dir / ADMIN_TOKEN_FILE).exists():
                # An open node: its own admin token lets tests drain it and remove members
                # (read at each new channel: a restart writes a new one).
                token = (self.data_dir / ADMIN_TOKEN_FILE).read_text().strip()
                channel = grpc.intercept_channel(
                    channel, _WithMetadata(((ADMIN_TOKEN_HEADER, token),))
                )
            self._channel = channel
        return self._channel

    @property
    def kv(self) -> kv_pb2_grpc.KVStub:
        return kv_pb2_grpc.KVStub(self.channel)  # type: ignore[no-untyped-call]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        self._close_channel()
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        self._close_channel()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._release()

    def _release(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def pause(self) -> None:
        """SIGSTOP: the process freezes, sockets stay open (a long GC pause, a stalled VM)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self, timeout: float = 30.0) -> NodeProcess:
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unary(channel: grpc.Channel, service: str, method: str, response: Any) -> Any:
    """The unary method ``method`` of the node's ``rumor.v1`` service ``service``, on
    ``channel``, answering ``response`` messages."""
    return channel.unary_unary(
        f"/rumor.v1.{service}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


def poll(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)
