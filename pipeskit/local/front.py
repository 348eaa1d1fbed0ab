"""The HTTP front: how the local AWS is spoken.

A WSGI app in front of moto's dispatcher. It answers Lambda ``Invoke`` itself (moto
cannot run code without Docker), authorizes every request when IAM is enforced
(:mod:`pipeskit.local.iam`), applies fault injection to CloudWatch Logs reads and S3 requests,
and passes everything else to moto.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode
from xml.sax.saxutils import escape

from pipeskit.local.durable import (
    INVOCATION_MARKER_HEADER,
    DurableExecutions,
    durable_qualifier,
    is_durable_api,
    raw_path,
)
from pipeskit.local.errors import AWSServiceError
from pipeskit.local.faults import FaultInjector
from pipeskit.local.iam import Authorizer
from pipeskit.local.runtime.invoke import LambdaRuntime, log_result_header

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

REQUESTS_PATH = "/_pipeskit/requests"
"""``GET`` answers the requests served so far per service (JSON), e.g. ``{"s3": 2010, "sqs": 100}``: what a
benchmark counts; ``DELETE`` sets the counts back to zero."""
INVOKE_PATH = re.compile(r"^/(?P<api>[^/]+)/functions/(?P<name>[^/]+)/invocations/?$")
FUNCTION_PATH = re.compile(r"^/(?P<api>[^/]+)/functions/(?P<name>[^/]+)/?$")
SYNC_DURABLE_WAIT_S = 900
"""How long a synchronous ``Invoke`` of a durable function waits for the execution's end (Lambda's 15 minutes)."""
_LOGS_TARGET_PREFIX = "Logs_20140328."
_SIGNING_SERVICE = re.compile(r"Credential=[^/,\s]+/[^/]+/[^/]+/(?P<service>[^/]+)/aws4_request")
_VOLATILE_QUERY = ("x-amz-", "continuation-token")
_STATUS = {
    200: "200 OK",
    202: "202 Accepted",
    204: "204 No Content",
    400: "400 Bad Request",
    404: "404 Not Found",
    413: "413 Request Entity Too Large",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def _status(code: int) -> str:
    return _STATUS.get(code, f"{code} Status")


class FrontApp:
    """WSGI application serving Invoke and delegating the rest to moto.

    Args:
        moto_app: moto's dispatcher WSGI application.
        runtime: The Lambda runtime model.
        faults: Fault injector.
        iam: Authorizes requests while its setting is on; none: nothing is authorized.
        durable: Runs durable functions and answers the durable-execution API; none: neither is served.
    """

    def __init__(
        self,
        moto_app: WSGIApp,
        runtime: LambdaRuntime,
        faults: FaultInjector,
        iam: Authorizer | None = None,
        durable: DurableExecutions | None = None,
    ) -> None:
        self._moto = moto_app
        self._runtime = runtime
        self._faults = faults
        self._iam = iam
        self._durable = durable
        self._requests: Counter[str] = Counter()
        self._requests_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if path == REQUESTS_PATH:
            return self._request_counts(start_response, method)
        service = _signing_service(environ)
        with self._requests_lock:
            self._requests[service or "unsigned"] += 1
        s3 = service == "s3"
        try:
            if self._iam is not None and self._iam.enabled:
                refusal = self._iam.check(environ)
                if refusal is not None:
                    _read_body(environ)  # the connection stays usable
                    return refusal.respond(start_response, method)
            if s3:
                self._faults.check_s3_request(method, _s3_target(environ))
            if self._durable is not None and service in ("lambda", None) and is_durable_api(raw_path(environ)):
                return self._durable_api(environ, start_response)
            if method == "POST":
                match = INVOKE_PATH.match(path)
                if match:
                    return self._invoke(environ, start_response, unquote(match["name"]))
                target = environ.get("HTTP_X_AMZ_TARGET", "")
                if target.startswith(_LOGS_TARGET_PREFIX):
                    self._faults.check_logs_request(target[len(_LOGS_TARGET_PREFIX):])
        except AWSServiceError as error:
            if s3:
                _read_body(environ)  # the connection stays usable for the client's retry
                return self._s3_error(start_response, error, method)
            return self._error(start_response, error, json_protocol=not path.startswith("/20"))
        except Exception as exc:  # a bug of ours: answer like an AWS service error
            logger.exception("local AWS failed to serve %s %s", method, path)
            error = AWSServiceError(
                "ServiceException", f"{type(exc).__name__}: {exc}", 500, error_type="Service"
            )
            return self._error(start_response, error, json_protocol=not path.startswith("/20"))
        response = self._moto(environ, start_response)
        if method == "DELETE" and FUNCTION_PATH.match(path):
            self._forget_function(unquote(FUNCTION_PATH.match(path)["name"]))  # type: ignore[index]
        return response

    def _request_counts(self, start_response: Callable[..., Any], method: str) -> Iterable[bytes]:
        with self._requests_lock:
            counts = dict(self._requests)
            if method == "DELETE":
                self._requests.clear()
        body = json.dumps(counts).encode()
        start_response(_status(200), [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _forget_function(self, name: str) -> None:
        """Close the idle environments of a deleted function."""
        account, region, function_name, _ = self._runtime._locate(name)
        self._runtime.pool.invalidate(f"arn:aws:lambda:{region}:{account}:function:{function_name}")

    def _durable_api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self._durable is not None
        status, headers, body = self._durable.serve(environ, _read_body(environ))
        start_response(_status(status), headers)
        return [body]

    def _invoke(
        self, environ: dict[str, Any], start_response: Callable[..., Any], name: str
    ) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [None])[0]
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        log_type = environ.get("HTTP_X_AMZ_LOG_TYPE", "None")
        client_context = environ.get("HTTP_X_AMZ_CLIENT_CONTEXT")
        payload = _read_body(environ)
        if (
            self._durable is not None
            and invocation_type != "DryRun"
            and environ.get(INVOCATION_MARKER_HEADER, "").lower() != "true"
            and getattr(self._runtime.moto_function(name, qualifier), "durable_config", None)
        ):
            return self._start_durable(environ, start_response, name, qualifier, invocation_type, payload)

        if invocation_type == "DryRun":
            spec = self._runtime.dry_run(name, qualifier)
            self._faults.check_invoke()
            start_response(_status(204), [("X-Amz-Executed-Version", spec.version), ("Content-Length", "0")])
            return [b""]
        if invocation_type == "Event":
            self._runtime.resolve(name, qualifier)
            self._faults.check_invoke()
            request_id, spec = self._runtime.invoke_async(name, payload, qualifier)
            start_response(
                _status(202),
                [
                    ("x-amzn-RequestId", request_id),
                    ("X-Amz-Executed-Version", spec.version),
                    ("Content-Length", "0"),
                ],
            )
            return [b""]
        if invocation_type != "RequestResponse":
            raise AWSServiceError(
                "InvalidParameterValueException", f"Unsupported InvocationType: {invocation_type}"
            )
        self._runtime.resolve(name, qualifier)
        self._faults.check_invoke()
        result = self._runtime.invoke(name, payload, qualifier, client_context)
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", result.request_id),
            ("X-Amz-Executed-Version", result.executed_version),
            ("Content-Length", str(len(result.payload))),
        ]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if log_type == "Tail":
            headers.append(("X-Amz-Log-Result", log_result_header(result)))
        start_response(_status(200), headers)
        return [result.payload]

    def _start_durable(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        name: str,
        qualifier: str | None,
        invocation_type: str,
        payload: bytes,
    ) -> Iterable[bytes]:
        """A caller's ``Invoke`` of a durable function: start (or find) its durable execution."""
        assert self._durable is not None
        if invocation_type not in ("Event", "RequestResponse"):
            raise AWSServiceError(
                "InvalidParameterValueException", f"Unsupported InvocationType: {invocation_type}"
            )
        qualifier = durable_qualifier(name, qualifier)
        fn = self._runtime.moto_function(name, qualifier)
        self._runtime.resolve(name, qualifier)
        self._faults.check_invoke()
        execution_name = environ.get("HTTP_X_AMZ_DURABLE_EXECUTION_NAME") or None
        arn = self._durable.start(fn, qualifier, payload, execution_name)
        headers = [
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("X-Amz-Executed-Version", str(fn.version)),
            ("X-Amz-Durable-Execution-Arn", arn),
        ]
        if invocation_type == "Event":
            start_response(_status(202), [*headers, ("Content-Length", "0")])
            return [b""]
        # RequestResponse: the execution's outcome, if it ends within a synchronous invocation's 15 minutes
        outcome = self._durable.wait(arn, SYNC_DURABLE_WAIT_S)
        if outcome is None:
            raise AWSServiceError(
                "ServiceException",
                f"The durable execution {arn} did not end within a synchronous invocation's "
                f"{SYNC_DURABLE_WAIT_S} seconds; it goes on: invoke with InvocationType=Event and follow it "
                "with GetDurableExecution.",
                500,
                error_type="Service",
            )
        headers.append(("Content-Type", "application/json"))
        if outcome.get("Status") == "SUCCEEDED":
            body = str(outcome.get("Result") or "null").encode()
        else:
            error = outcome.get("Error") or {}
            body = json.dumps({
                "errorMessage": error.get("ErrorMessage") or f"durable execution {outcome.get('Status')}",
                "errorType": error.get("ErrorType") or str(outcome.get("Status")),
            }).encode()  # fmt: skip
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        start_response(_status(200), [*headers, ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _error(
        start_response: Callable[..., Any], error: AWSServiceError, json_protocol: bool
    ) -> Iterable[bytes]:
        if json_protocol:  # awsJson (CloudWatch Logs)
            body = {"__type": error.code, "message": error.message}
            content_type = "application/x-amz-json-1.1"
        else:  # restJson (Lambda)
            body = {"Type": error.error_type, "message": error.message}
            if error.reason:
                body["Reason"] = error.reason
            content_type = "application/json"
        data = json.dumps(body).encode()
        start_response(
            _status(error.status),
            [
                ("Content-Type", content_type),
                ("x-amzn-ErrorType", error.code),
                ("Content-Length", str(len(data))),
            ],
        )
        return [data]

    @staticmethod
    def _s3_error(start_response: Callable[..., Any], error: AWSServiceError, method: str) -> Iterable[bytes]:
        """An S3 (REST-XML) error; a ``HEAD`` answer has no body, as S3's."""
        data = b"" if method == "HEAD" else (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            "<RequestId>0000000000000000</RequestId></Error>"
        ).encode()
        start_response(
            _status(error.status), [("Content-Type", "application/xml"), ("Content-Length", str(len(data)))]
        )
        return [data]


def _signing_service(environ: dict[str, Any]) -> str | None:
    """The service a request was signed for (SigV4 header, or a presigned URL's query)."""
    credential = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in credential:
        credential = "Credential=" + unquote(
            (parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential") or [""])[0]
        )
    match = _SIGNING_SERVICE.search(credential)
    return match["service"] if match else None


def _s3_target(environ: dict[str, Any]) -> str:
    """What an S3 request addresses (host, path, query without signing or paging parameters)."""
    query = [
        (name, value)
        for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if not name.lower().startswith(_VOLATILE_QUERY)
    ]
    return f"{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}?{urlencode(sorted(query))}"


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" or environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""
