"""`PipesLambdaComponent`: Lambda-backed assets declared in a Dagster project's ``defs.yaml``.

A Dagster component (``dagster.components``): ``dg scaffold defs pipeskit.PipesLambdaComponent NAME``
writes an example, ``dg list components`` lists it (the package's ``dagster_dg_cli.registry_modules``
entry point names ``pipeskit``). Its assets run ``function_name`` through `PipesLambdaClient.run`;
partitioned ones fan out over the run's partition keys (`PipesLambdaClient.stream_fan_out`), one
work item per partition key, with the single-run backfill policy by default: a backfill of any range
is one run and one fan-out.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    multi_asset,
)
from dagster.components import (
    Component,
    ComponentLoadContext,
    ComponentTypeSpec,
    Model,
    Resolvable,
    ResolvedAssetCheckSpec,
    ResolvedAssetSpec,
    Scaffolder,
    ScaffoldRequest,
    scaffold_with,
)
from dagster.components.resolved.core_models import OpSpec
from pydantic import Field, create_model

from .client import PipesLambdaClient
from .errors import PipesKitError, UnsupportedComponentError
from .settings import ClientSettings, SettingsError

__all__ = ["ClientAttributes", "FanOutAttributes", "PipesLambdaComponent", "PipesLambdaComponentScaffolder"]

DEFAULT_RESOURCE_KEY = "lambda_pipes"
"""The resource key of the client the assets use, unless ``resource_key`` names another."""

_ClientFields: type[Model] = create_model(  # type: ignore[call-overload]
    "_ClientFields",
    __base__=Model,
    **{
        name: (field.annotation, Field(default=None, description=field.description))
        for name, field in PipesLambdaClient.model_fields.items()
    },
)


class ClientAttributes(Resolvable, _ClientFields):  # type: ignore[misc, valid-type]
    """The settings of the client the component provides: `PipesLambdaClient`'s configuration fields
    (``channel``, ``region_name``, ``endpoint_url``, ``profile_name``, ``messages_bucket``,
    ``work_queue_url``, …); each one left out comes from the ``PIPESKIT_*``/``AWS_*`` environment."""


class FanOutAttributes(Resolvable, Model):
    """How a partitioned asset's partitions fan out (`PipesLambdaClient.fan_out`'s arguments)."""

    transport: Literal["auto", "sqs", "invoke"] = Field(
        default="auto",
        description="invoke (asynchronous invokes of function_name), sqs (the work queue) or auto: invokes for up "
        "to PIPESKIT_FAN_OUT_INVOKE_MAX_ITEMS partitions, the work queue above",
    )
    tolerated_failures: int | float = Field(
        default=0, description="failed partitions allowed before the step fails (a count, or a fraction below 1)"
    )
    max_concurrency: int | None = Field(default=None, description="partitions in flight at once (default: all)")
    deadline_s: float | None = Field(
        default=None, description="partitions with no outcome after this long are reported failed"
    )
    queue_url: str | None = Field(default=None, description="the work queue; default PIPESKIT_WORK_QUEUE_URL")


class PipesLambdaComponentScaffolder(Scaffolder):
    """Writes a ``defs.yaml`` declaring one asset, named after the folder, run by a Lambda function."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        """Write ``defs.yaml`` into the request's folder (a component of its own, or appended)."""
        name = re.sub(r"\W", "_", request.target_path.name) or "lambda_asset"
        text = scaffolded_defs_yaml(request.type_name, name)
        if request.append:
            with open(request.target_path, "a", encoding="utf-8") as defs:
                defs.write("---\n" + text)
        else:
            (request.target_path / "defs.yaml").write_text(text, encoding="utf-8")


def scaffolded_defs_yaml(type_name: str, asset_name: str) -> str:
    """The ``defs.yaml`` `PipesLambdaComponentScaffolder` writes: one asset and its check."""
    return textwrap.dedent(f"""\
        type: {type_name}

        attributes:
          # The function: name, ARN or name:alias, deployed behind the kit's pipes layer.
          function_name: my-pipes-function
          # Sent to the function as its event (the Pipes bootstrap is merged in).
          event:
            rows: 100
          assets:
            - key: {asset_name}
              group_name: lambda
              kinds: [lambda]
          checks:
            - name: rows_are_positive
              asset: {asset_name}
          # The client: PipesLambdaClient's settings, each one left out from the environment
          # (AWS_REGION, AWS_ENDPOINT_URL, PIPESKIT_MESSAGES_BUCKET, ...). Or resource_key: the key of a
          # PipesLambdaClient resource the project defines itself.
          client:
            channel: response
        """)


_PROVIDED: dict[tuple[str, str], PipesLambdaClient] = {}
_PROVIDED_LOCK = threading.Lock()


def provided_client(resource_key: str, settings: Mapping[str, Any]) -> PipesLambdaClient:
    """The client provided under ``resource_key`` with ``settings``: one object per key and settings in a
    process, so the components that provide the same one merge into one code location (Dagster refuses
    two different resources under one key).

    Raises:
        UnsupportedComponentError: ``settings`` name a channel that does not exist.
        SettingsError: a setting cannot work.
    """
    given = {name: value for name, value in settings.items() if value is not None}
    identity = (resource_key, json.dumps(given, sort_keys=True, default=str))
    with _PROVIDED_LOCK:
        client = _PROVIDED.get(identity)
        if client is None:
            client = PipesLambdaClient(**given)
            # the client resolves its settings on first use; a value that cannot work is refused now,
            # when the project loads, rather than in the first run
            ClientSettings.resolve(config=given)
            _PROVIDED[identity] = client
        return client


@scaffold_with(PipesLambdaComponentScaffolder)
class PipesLambdaComponent(Component, Resolvable, Model):
    """Assets materialized by an AWS Lambda function through Dagster Pipes, declared in ``defs.yaml``.

    Unpartitioned assets invoke ``function_name`` once per run (`PipesLambdaClient.run`) with
    ``event``; what the function reports (materializations, check results) is the run's result.
    Partitioned assets fan out over the run's partition keys (`PipesLambdaClient.stream_fan_out`):
    one Pipes session per partition key, each with its own partition, the handler's event being
    ``event`` plus ``pipeskit_item`` (the key); their backfill policy is single-run unless
    ``op.backfill_policy`` says otherwise, so a backfill of any range is one run and one fan-out.

    The client: with ``client`` (its settings, the rest from the environment) the component provides
    the resource ``resource_key`` (default ``lambda_pipes``); with ``resource_key`` alone the assets use
    a `PipesLambdaClient` resource the project defines itself; with neither, the component provides
    ``lambda_pipes`` configured from the environment.

    Example:
        .. code-block:: yaml

            type: pipeskit.PipesLambdaComponent
            attributes:
              function_name: pipeskit-dev-dataset-summary
              event: {rows: 2000}
              assets:
                - key: orders_summary
                  kinds: [lambda]
              checks:
                - {name: amounts_are_positive, asset: orders_summary}
    """

    function_name: str = Field(description="the function: name, ARN or name:alias")
    qualifier: str | int | None = Field(
        default=None, description="the version (a number) or alias to invoke; default the function's $LATEST"
    )
    event: dict[str, Any] = Field(
        default_factory=dict, description="JSON values sent to the function as its event (the bootstrap is merged in)"
    )
    extras: dict[str, Any] | None = Field(default=None, description="JSON values for the remote PipesContext.extras")
    assets: Sequence[ResolvedAssetSpec] = Field(description="the assets the function materializes")
    checks: Sequence[ResolvedAssetCheckSpec] | None = Field(default=None, description="their checks")
    resource_key: str | None = Field(
        default=None,
        description="the key of the PipesLambdaClient resource the assets use (default lambda_pipes); alone, a "
        "resource the project defines; with client, the one the component provides",
    )
    client: ClientAttributes | None = Field(
        default=None, description="settings of the client the component provides; left out: the environment's"
    )
    fan_out: FanOutAttributes | None = Field(
        default=None, description="partitioned assets: how their partitions fan out"
    )
    op: OpSpec | None = Field(default=None, description="the op: name, tags, description, pool, backfill_policy")

    @classmethod
    def get_spec(cls) -> ComponentTypeSpec:
        """What ``dg`` shows of the component type."""
        return ComponentTypeSpec(tags=["aws", "lambda", "pipes"], produces=["asset", "asset_check", "resource"])

    @property
    def client_resource_key(self) -> str:
        """The key of the client resource the assets use."""
        return self.resource_key or DEFAULT_RESOURCE_KEY

    @property
    def _qualifier(self) -> str | None:
        return None if self.qualifier is None else str(self.qualifier)

    @property
    def provides_client(self) -> bool:
        """Whether the component provides its client (not when only ``resource_key`` is given)."""
        return self.client is not None or self.resource_key is None

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        """The assets (and, unless the project provides it, the client resource).

        Raises:
            PipesKitError: the attributes cannot work together (the message names the attribute).
        """
        specs = list(self.assets)
        if not specs:
            raise PipesKitError(
                f"PipesLambdaComponent for {self.function_name}: assets is empty; declare at least one asset "
                "(assets: [{key: my_asset}])"
            )
        partitions = {spec.partitions_def for spec in specs}
        partitioned = any(p is not None for p in partitions)
        if partitioned and len(partitions) > 1:
            raise PipesKitError(
                f"PipesLambdaComponent for {self.function_name}: its assets have different partitions_def; one "
                "invocation (or fan-out) materializes them all, so give them the same partitions_def, or declare "
                "them in separate components"
            )
        if self.fan_out is not None and not partitioned:
            raise PipesKitError(
                f"PipesLambdaComponent for {self.function_name}: fan_out is given but no asset has a "
                "partitions_def; a fan-out runs one session per partition key of the run. Add a partitions_def "
                "to the assets, or remove fan_out"
            )
        resources = {}
        if self.provides_client:
            settings = self.client.model_dump(exclude_none=True) if self.client is not None else {}
            try:
                resources[self.client_resource_key] = provided_client(self.client_resource_key, settings)
            except (UnsupportedComponentError, SettingsError) as error:
                raise type(error)(f"PipesLambdaComponent for {self.function_name}, client: {error}") from error
        return Definitions(assets=[self._assets_def(specs, partitioned)], resources=resources)

    def _assets_def(self, specs: list[AssetSpec], partitioned: bool) -> Any:
        op = self.op or OpSpec()
        backfill_policy = op.backfill_policy
        if partitioned:
            # a fan-out's results are its items' materializations, not the op's outputs
            specs = [spec.replace_attributes(skippable=True) for spec in specs]
            backfill_policy = backfill_policy or BackfillPolicy.single_run()
        key = self.client_resource_key
        check_specs: list[AssetCheckSpec] = list(self.checks or [])

        @multi_asset(
            name=op.name or _op_name(specs[0]),
            specs=specs,
            check_specs=check_specs or None,
            description=op.description,
            op_tags=op.tags,
            pool=op.pool,
            backfill_policy=backfill_policy,
            required_resource_keys={key},
        )
        def _lambda_assets(context):  # type: ignore[no-untyped-def]  # dagster reads a real annotation, not a string
            client = getattr(context.resources, key)
            if not isinstance(client, PipesLambdaClient):
                raise UnsupportedComponentError(
                    f"the resource {key!r} is a {type(client).__module__}.{type(client).__qualname__}; "
                    "PipesLambdaComponent runs its function through a pipeskit.PipesLambdaClient: define "
                    f"{key!r} as one, or name another resource_key"
                )
            if partitioned:
                yield from self._fan_out(context, client)
            else:
                yield from self._run(context, client)

        return _lambda_assets

    def _run(
        self, context: AssetExecutionContext, client: PipesLambdaClient
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        completed = client.run(
            context=context, function_name=self.function_name, event=self.event, extras=self.extras,
            qualifier=self._qualifier,
        )  # fmt: skip
        yield from completed.get_results()

    def _fan_out(
        self, context: AssetExecutionContext, client: PipesLambdaClient
    ) -> Iterator[AssetMaterialization | AssetCheckResult]:
        options = self.fan_out or FanOutAttributes()
        summary = yield from client.stream_fan_out(
            context=context, items=context.partition_keys, function_name=self.function_name,
            event=self.event, extras=self.extras, qualifier=self._qualifier, transport=options.transport,
            queue_url=options.queue_url, max_concurrency=options.max_concurrency,
            tolerated_failures=options.tolerated_failures, deadline_s=options.deadline_s,
        )  # fmt: skip
        context.log.info(
            f"fan-out over {len(summary.results)} partitions: {summary.succeeded} succeeded, {summary.failed} "
            f"failed in {summary.wall_s:.1f} s, {summary.duplicates} duplicates absorbed"
        )
        summary.raise_for_failures()


def _op_name(spec: AssetSpec) -> str:
    """An op name from the first asset's key (op names are identifiers)."""
    return "lambda_" + re.sub(r"\W", "_", "__".join(spec.key.path))

