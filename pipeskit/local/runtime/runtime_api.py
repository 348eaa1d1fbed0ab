"""The Lambda Runtime API of one execution environment, served to AWS's runtime interface client.

``awslambdaric`` (in the environment) long-polls ``GET /2018-06-01/runtime/invocation/next`` for an
event and posts the outcome to ``…/invocation/{id}/response`` or ``…/error``; an initialisation
failure goes to ``…/init/error``. Each environment gets its own server on a loopback port (its
``AWS_LAMBDA_RUNTIME_API``). What the runtime reports is queued as `ApiEvent` values and signalled
on a file descriptor, so the environment waits on it together with its log pipes.
"""

from __future__ import annotations

import collections
import json
import os
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass(frozen=True)
class NextInvocation:
    """An event handed to the runtime by ``/invocation/next``."""

    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_arn: str
    trace_id: str
    client_context: str | None = None


@dataclass(frozen=True)
class ApiEvent:
    """What the runtime reported.

    Attributes:
        kind: ``ready`` (it asked for its first event: init is over), ``response``, ``error`` or
            ``init_error``.
        request_id: the invocation it concerns (response and error).
        body: the posted body.
        error_type: the ``Lambda-Runtime-Function-Error-Type`` header.
    """

    kind: str
    request_id: str = ""
    body: bytes = b""
    error_type: str = ""

    def error_document(self) -> dict[str, Any]:
        """The posted error, as Lambda returns it to the caller."""
        try:
            document = json.loads(self.body) if self.body else {}
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        document.setdefault("errorType", self.error_type or "Runtime.Unknown")
        document.setdefault("errorMessage", self.body.decode("utf-8", "replace"))
        return document


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=threading.Condition)
    pending: NextInvocation | None = None
    ready: bool = False
    closed: bool = False


class RuntimeApi:
    """One environment's Runtime API: hand out events, collect what the runtime reports."""

    def __init__(self) -> None:
        self._state = _State()
        self._events: collections.deque[ApiEvent] = collections.deque()
        self.signal_fd, self._signal_w = os.pipe()
        os.set_blocking(self.signal_fd, False)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws-runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port`` for ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def offer(self, invocation: NextInvocation) -> None:
        """Make ``invocation`` the answer to the runtime's (current or next) ``/invocation/next``."""
        with self._state.lock:
            self._state.pending = invocation
            self._state.lock.notify_all()

    def take_events(self) -> list[ApiEvent]:
        """What the runtime reported since the last call (and clear the signal)."""
        try:
            while os.read(self.signal_fd, 4096):
                pass
        except BlockingIOError:
            pass
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    def close(self) -> None:
        """Stop serving; a runtime still waiting for an event gets none."""
        with self._state.lock:
            self._state.closed = True
            self._state.lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for fd in (self.signal_fd, self._signal_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- called by the HTTP handler threads ---------------------------------------------------

    def _report(self, event: ApiEvent) -> None:
        self._events.append(event)
        try:
            os.write(self._signal_w, b"!")
        except OSError:
            pass  # closed: the environment is gone

    def _next(self) -> NextInvocation | None:
        with self._state.lock:
            if not self._state.ready:
                self._state.ready = True
                self._report(ApiEvent("ready"))
            while self._state.pending is None and not self._state.closed:
                self._state.lock.wait()
            invocation, self._state.pending = self._state.pending, None
            return invocation


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: RuntimeApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A runtime killed mid-request (timeout, crash, environment closed) resets its connection:
        # that is how environments end, not an error of the server.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime interface client expects
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    def _send(self, status: HTTPStatus, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != f"{PREFIX}/invocation/next":
            self._send(HTTPStatus.NOT_FOUND)
            return
        invocation = self.server.api._next()
        if invocation is None:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b'{"errorType":"Runtime.Closed"}')
            return
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        self._send(HTTPStatus.OK, invocation.payload, headers)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
        parts = self.path.removeprefix(PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            event = ApiEvent("init_error", body=body, error_type=error_type)
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            event = ApiEvent(parts[2], request_id=parts[1], body=body, error_type=error_type)
        else:
            self._send(HTTPStatus.NOT_FOUND)
            return
        self.server.api._report(event)
        self._send(HTTPStatus.ACCEPTED, b'{"status":"OK"}', {"Content-Type": "application/json"})
