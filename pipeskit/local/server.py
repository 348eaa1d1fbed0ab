"""The local AWS: one endpoint serving moto plus the kit's Lambda runtime."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeskit.local import moto_patches
from pipeskit.local.durable import DurableExecutions, register_region
from pipeskit.local.errors import ServerStateError
from pipeskit.local.event_sources import EventSourcePoller
from pipeskit.local.faults import FaultInjector
from pipeskit.local.front import FrontApp
from pipeskit.local.iam import Authorizer
from pipeskit.local.logs import LogWriter
from pipeskit.local.runtime.invoke import LambdaRuntime
from pipeskit.local.runtime.specs import FunctionSpec
from pipeskit.local.settings import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    DUMMY_SESSION_TOKEN,
    LocalAWSSettings,
)

logger = logging.getLogger(__name__)


class LocalAWS:
    """A local AWS endpoint: moto in-process plus a Lambda runtime without Docker.

    State lives as long as the process (moto's backends are process-global).

    Example:
        >>> with LocalAWS(port=0) as aws:  # doctest: +SKIP
        ...     aws.client("lambda").list_functions()

    Args:
        settings: Settings; ``LocalAWSSettings.from_env()`` when omitted.
        **overrides: Settings fields overriding ``settings``.
    """

    def __init__(self, settings: LocalAWSSettings | None = None, **overrides: Any) -> None:
        base = settings if settings is not None else LocalAWSSettings.from_env()
        self._settings = base.replace(**overrides) if overrides else base
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._event_invoker: Callable[[str, bytes], None] | None = None
        self._work_dir: Path | None = None
        self._owns_work_dir = False
        self._port: int | None = None
        self.runtime: LambdaRuntime | None = None
        self.logs: LogWriter | None = None
        self.faults: FaultInjector | None = None
        self.event_sources: EventSourcePoller | None = None
        self.durable: DurableExecutions | None = None
        self.iam = Authorizer(lambda: self._settings)

    # -- settings ---------------------------------------------------------------------

    @property
    def settings(self) -> LocalAWSSettings:
        """The current settings (fault injection reads them on every request)."""
        return self._settings

    @contextlib.contextmanager
    def override(self, **changes: Any) -> Iterator[LocalAWSSettings]:
        """Temporarily change settings, e.g. to switch a fault on in one test.

        Args:
            **changes: Settings fields to change. ``host``/``port`` cannot change.

        Yields:
            The settings in effect inside the block.
        """
        previous = self._settings
        self._settings = previous.replace(**changes)
        try:
            yield self._settings
        finally:
            self._settings = previous

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> LocalAWS:
        """Start serving; returns ``self``.

        Raises:
            ServerStateError: Already started.
            OSError: The port is taken.
        """
        if self._server is not None:
            raise ServerStateError("LocalAWS is already started")
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        moto_patches.apply()
        s = self._settings
        if s.work_dir:
            self._work_dir = Path(s.work_dir)
            self._work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._work_dir = Path(tempfile.mkdtemp(prefix="local-aws-"))
            self._owns_work_dir = True

        self.logs = LogWriter(
            s.account_id,
            s.region,
            ingestion_delay_s=lambda: self._settings.log_ingestion_delay_s,
            stream_delay_s=lambda: self._settings.log_stream_delay_s,
        )
        self.faults = FaultInjector(lambda: self._settings)
        self.runtime = LambdaRuntime(
            lambda: self._settings,
            lambda: self.endpoint_url,
            self._work_dir / "code",
            self.logs.emit,
            credentials=self._function_credentials,
        )
        quiet = s.quiet

        class _Handler(MotoRequestHandler):  # type: ignore[misc,valid-type]
            disable_nagle_algorithm = True  # a response's headers and body go out at once, not 40 ms apart

            def log_request(self, *args: Any, **kwargs: Any) -> None:
                if not quiet:
                    super().log_request(*args, **kwargs)

        register_region(s.account_id, s.region)
        self.durable = DurableExecutions(lambda: self._settings, self._durable_invoker_client)
        app = FrontApp(
            DomainDispatcherApplication(create_backend_app), self.runtime, self.faults, iam=self.iam,
            durable=self.durable,
        )
        try:
            self._server = make_server(
                s.bind_address, s.port, app, threaded=True, request_handler=_Handler
            )
        except BaseException:
            self._teardown()
            raise
        self._server.daemon_threads = True
        self._port = int(self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="local-aws-http", daemon=True,
        )
        self._thread.start()
        runtime = self.runtime
        self._event_invoker = lambda arn, payload: runtime.invoke_async(arn, payload)
        moto_patches.bind_event_invoker(self._event_invoker)
        self.event_sources = EventSourcePoller(self.runtime, lambda: self._settings)
        self.event_sources.start()
        logger.info("local AWS listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop serving, kill every execution environment and remove temporary files."""
        if self._server is None:
            return
        if self._event_invoker is not None:
            moto_patches.unbind_event_invoker(self._event_invoker)
            self._event_invoker = None
        if self.event_sources is not None:
            self.event_sources.stop()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._teardown()

    def _teardown(self) -> None:
        if self.durable is not None:
            self.durable.close()
        if self.runtime is not None:
            self.runtime.close()
        if self.logs is not None:
            self.logs.close()
        if self._owns_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._server = None

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    # -- connection details -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port served (the picked one when configured with ``0``).

        Raises:
            ServerStateError: Not started.
        """
        if self._port is None:
            raise ServerStateError("LocalAWS is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://localhost:<port>``: the value for ``AWS_ENDPOINT_URL``."""
        return f"http://{self._settings.host}:{self.port}"

    def credentials(self) -> dict[str, str]:
        """The operator's credentials: dummy ones, or the administrator's keys when IAM is enforced.

        Returns:
            ``aws_access_key_id``, ``aws_secret_access_key`` and, without IAM, ``aws_session_token``.
        """
        if self._settings.iam:
            key_id, secret = self.iam.admin_credentials()
            return {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        return {
            "aws_access_key_id": DUMMY_ACCESS_KEY_ID,
            "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY,
            "aws_session_token": DUMMY_SESSION_TOKEN,
        }

    def _durable_invoker_client(self) -> Any:
        """The Lambda client the durable executor invokes handlers with: the administrator's, whether IAM
        is enforced now or only later (``override(iam=True)``), with no retry (a retried invoke runs the
        handler twice) and a read timeout beyond an invocation's 15 minutes."""
        import boto3
        from botocore.config import Config

        key_id, secret = self.iam.admin_credentials()
        session = boto3.session.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=self._settings.region
        )
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=960)
        return session.client("lambda", endpoint_url=self.endpoint_url, config=config)

    def _function_credentials(self, spec: FunctionSpec) -> tuple[str, str, str]:
        """An execution environment's credentials: its role's temporary ones when IAM is enforced."""
        if self._settings.iam and spec.role:
            return self.iam.role_credentials(spec.role, spec.name)
        return DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, DUMMY_SESSION_TOKEN

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and CLIs at this endpoint.

        With IAM enforced they carry the administrator's keys and no ``AWS_SESSION_TOKEN``.
        """
        region = self._settings.region
        env = {"AWS_ENDPOINT_URL": self.endpoint_url}
        env.update({name.upper(): value for name, value in self.credentials().items()})
        env.update({"AWS_DEFAULT_REGION": region, "AWS_REGION": region})
        return env

    def client(
        self,
        service_name: str,
        *,
        retries: int | None = None,
        read_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """A boto3 client bound to this endpoint with the operator's credentials (:meth:`credentials`).

        Args:
            service_name: e.g. ``"lambda"``.
            retries: Total attempts - 1 (``0`` turns retries off); botocore's
                default when omitted.
            read_timeout: Socket read timeout in seconds.
            **kwargs: Passed to ``boto3.session.Session.client``.

        Returns:
            The client.
        """
        import boto3
        from botocore.config import Config

        config_kwargs: dict[str, Any] = {}
        if retries is not None:
            config_kwargs["retries"] = {"total_max_attempts": retries + 1, "mode": "standard"}
        if read_timeout is not None:
            config_kwargs["read_timeout"] = read_timeout
        config = Config(**config_kwargs)
        if "config" in kwargs:
            config = kwargs.pop("config").merge(config)
        session = boto3.session.Session(
            **self.credentials(), region_name=kwargs.pop("region_name", self._settings.region)
        )
        return session.client(service_name, endpoint_url=self.endpoint_url, config=config, **kwargs)
