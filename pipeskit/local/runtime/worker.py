"""Execution environment worker: the code that runs inside one environment process.

This file is run by path (``python -I -u worker.py <cfg>``) and must only use the
standard library: the ``pipeskit`` package is not importable from a function's
environment, exactly as the Lambda runtime is not part of the function's code.

Protocol with the parent (see ``environments.py``):

* The control channel is a pair of private pipes whose descriptors are passed on the
  command line: frames are a 4-byte big-endian length followed by UTF-8 JSON.
* stdout and stderr are one pipe, read by the parent as the function's log. After
  the init phase and after every invocation the worker flushes both streams and
  writes a per-environment sentinel line, then sends the control message; the
  parent reads the log up to the sentinel, so it knows it has every line.
"""

import importlib
import json
import logging
import os
import resource
import struct
import sys
import time
import traceback

_HEADER = struct.Struct(">I")


class LambdaContext:
    """The ``context`` object handed to the handler, as the Python runtime builds it."""

    def __init__(self, info, deadline_ms):
        self.aws_request_id = info["aws_request_id"]
        self.function_name = info["function_name"]
        self.function_version = info["function_version"]
        self.invoked_function_arn = info["invoked_function_arn"]
        self.memory_limit_in_mb = str(info["memory_limit_in_mb"])
        self.log_group_name = info["log_group_name"]
        self.log_stream_name = info["log_stream_name"]
        self.identity = None
        self.client_context = info.get("client_context")
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record):
        record.aws_request_id = _RequestIdFilter.request_id
        return True


def _install_lambda_log_handler():
    """Root logger handler with the Lambda Python runtime's text format."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper()
    root.setLevel(getattr(logging, level, logging.WARNING))


def _read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(fd):
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


def _send(fd, message):
    data = json.dumps(message).encode("utf-8")
    data = _HEADER.pack(len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _error_record(exc, error_type=None, skip_frames=1):
    tb = traceback.extract_tb(exc.__traceback__)[skip_frames:]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(tb),
    }


def _log_error(record):
    """Print an error as the Python runtime does (one event: ``\\r`` keeps it together)."""
    lines = ["[ERROR] {}: {}".format(record["errorType"], record["errorMessage"])]
    if record["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in record["stackTrace"])
    sys.stdout.write("\r".join(line.replace("\n", "\r") for line in lines) + "\n")


def _checkpoint(sentinel):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # a handler may have closed or replaced the streams
        pass
    os.write(1, ("\n" + sentinel + "\n").encode("ascii"))


def _max_memory_mb():
    # VmHWM is this process image's peak; ru_maxrss may include the pre-exec parent.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _load_handler(handler_spec):
    module_name, _, func_name = handler_spec.rpartition(".")
    if not module_name:
        raise _InitError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler_spec}': not enough values to unpack (expected 2, got 1)",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {exc}",
        ) from None
    except SyntaxError as exc:
        raise _InitError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
        ) from None
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{func_name}' missing on module '{module_name}'",
        ) from None


class _InitError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def main():
    config = json.loads(sys.argv[1])
    req_fd, resp_fd, sentinel = config["req_fd"], config["resp_fd"], config["sentinel"]
    # Code first (/var/task), then the layers (/opt/python), then the runtime.
    sys.path[:0] = config["sys_path"]
    os.chdir(config["task_root"])
    _install_lambda_log_handler()

    started = time.monotonic()
    handler = None
    init_error = None
    try:
        handler = _load_handler(config["handler"])
    except _InitError as exc:
        init_error = {"errorMessage": str(exc), "errorType": exc.error_type, "stackTrace": []}
        _log_error(init_error)
    except BaseException as exc:  # an exception raised at import time
        init_error = _error_record(exc, skip_frames=0)
        _log_error(init_error)
    _checkpoint(sentinel)
    _send(resp_fd, {"type": "ready", "init_ms": (time.monotonic() - started) * 1000})

    while True:
        request = _recv(req_fd)
        if request is None:
            return
        context = LambdaContext(request["context"], request["deadline_ms"])
        _RequestIdFilter.request_id = context.aws_request_id
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        response = {"type": "result"}
        if init_error is not None:
            _log_error(init_error)
            response["error"] = dict(init_error, requestId=context.aws_request_id)
        else:
            try:
                event = json.loads(request["payload"]) if request["payload"] else {}
                result = handler(event, context)
                try:
                    response["payload"] = json.dumps(result)
                except (TypeError, ValueError) as exc:
                    record = {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "requestId": context.aws_request_id,
                        "stackTrace": [],
                    }
                    _log_error(record)
                    response["error"] = record
            except Exception as exc:  # the handler's unhandled exception
                record = _error_record(exc)
                record["requestId"] = context.aws_request_id
                _log_error(record)
                response["error"] = record
        _checkpoint(sentinel)
        response["max_memory_mb"] = _max_memory_mb()
        _send(resp_fd, response)


if __name__ == "__main__":
    main()
