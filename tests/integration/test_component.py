"""`PipesLambdaComponent` declared in a defs folder's ``defs.yaml``, loaded by Dagster's component
loader, materialized against functions on the local AWS (the real pipes layer, real Dagster)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from dagster import AssetKey, BackfillPolicy, DagsterInstance, Definitions, ExecuteInProcessResult
from dagster.components.core.component_tree import ComponentTreeException
from dagster.components.testing import create_defs_folder_sandbox

from pipeskit import PipesLambdaClient, PipesLambdaComponent
from pipeskit.local import LocalAWS
from tests.docs.readme import of_role

COMPONENT = "pipeskit.PipesLambdaComponent"


@contextmanager
def component_defs(attributes: dict[str, Any], *, name: str = "lambda_assets") -> Iterator[Definitions]:
    """The definitions of a project whose defs folder holds one ``defs.yaml`` declaring the component."""
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / name
        folder.mkdir()
        (folder / "defs.yaml").write_text(yaml.safe_dump({"type": COMPONENT, "attributes": attributes}))
        with sandbox.build_all_defs() as defs:
            yield defs


def materialize_all(defs: Definitions, **kwargs: Any) -> ExecuteInProcessResult:
    """One run of every asset of ``defs``."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False, **kwargs)


@pytest.fixture
def component_function(handler_function) -> str:
    return handler_function("component_asset")


@pytest.fixture
def aws_environment(local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local AWS as the environment's AWS: where a client configured from the environment points."""
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)


def test_an_asset_with_a_check_materializes_through_the_client_the_component_provides(
    aws_environment, component_function
):
    attributes = {
        "function_name": component_function,
        "event": {"rows": 7, "check_name": "rows_are_positive"},
        "extras": {"multiplier": 3},
        "assets": [{"key": "warehouse/orders_summary", "group_name": "lambda", "kinds": ["lambda"],
                    "deps": ["raw_orders"]}],
        "checks": [{"name": "rows_are_positive", "asset": "warehouse/orders_summary"}],
    }  # fmt: skip
    with component_defs(attributes) as defs:
        key = AssetKey(["warehouse", "orders_summary"])
        spec = defs.resolve_assets_def(key).specs_by_key[key]
        assert spec.group_name == "lambda" and "lambda" in spec.kinds
        assert [dep.asset_key for dep in spec.deps] == [AssetKey("raw_orders")]
        # no client settings and no resource_key: the component provides lambda_pipes, from the environment
        assert isinstance(defs.resources["lambda_pipes"], PipesLambdaClient)
        result = materialize_all(defs)
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.asset_key == key
    assert event.materialization.metadata["rows"].value == 21, "the event and the extras reached the function"
    assert event.materialization.metadata["function_version"].value == "$LATEST"
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed, check.metadata["rows"].value) == ("rows_are_positive", True, 21)


def test_partitions_fan_out_one_session_per_partition_key_in_one_run(
    local_aws, aws_environment, component_function, bucket
):
    version = local_aws.client("lambda").publish_version(FunctionName=component_function)["Version"]
    attributes = {
        "function_name": component_function,
        "qualifier": version,
        "event": {"rows": 5},
        "assets": [{"key": "daily_rows",
                    "partitions_def": {"type": "daily", "start_date": "2026-10-01", "end_date": "2026-10-31"}}],
        "client": {"endpoint_url": local_aws.endpoint_url, "region_name": local_aws.settings.region,
                   "messages_bucket": bucket},
        "fan_out": {"transport": "invoke", "deadline_s": 120},
    }  # fmt: skip
    days = ["2026-10-04", "2026-10-05", "2026-10-06"]
    with component_defs(attributes) as defs:
        assets_def = defs.resolve_assets_def("daily_rows")
        assert assets_def.backfill_policy == BackfillPolicy.single_run()
        result = materialize_all(
            defs, tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
        )
    assert result.success
    events = result.get_asset_materialization_events()
    assert sorted(e.materialization.partition for e in events) == days, "each partition once, in one run"
    for event in events:
        metadata = event.materialization.metadata
        assert metadata["partition"].value == event.materialization.partition, "each session had its partition"
        assert metadata["item"].value == event.materialization.partition, "one work item per partition key"
        assert metadata["rows"].value == 5, "the component's event reached every item"
        assert metadata["function_version"].value == version, "each item invoked the qualifier"


def test_a_resource_of_the_project_is_used_when_only_its_key_is_named(local_aws, aws_environment, component_function):
    client = PipesLambdaClient(endpoint_url=local_aws.endpoint_url, region_name=local_aws.settings.region,
                               channel="logs")  # fmt: skip
    attributes = {"function_name": component_function, "event": {"rows": 2}, "resource_key": "my_lambda",
                  "assets": [{"key": "logged_rows"}]}  # fmt: skip
    with component_defs(attributes) as defs:
        assert "my_lambda" not in defs.resources, "the component provides no client when only the key is named"
        result = materialize_all(Definitions.merge(defs, Definitions(resources={"my_lambda": client})))
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["rows"].value == 2
    assert client.message_reader.channel == "logs"


@pytest.mark.parametrize(
    ("attributes", "says"),
    [
        ({"assets": [{"key": "a"}]}, ["attributes.function_name", "Field required"]),
        ({"function_name": "f", "assets": [{"key": "a"}], "client": {"channel": "carrier-pigeon"}},
         ["client", "there is no channel 'carrier-pigeon'", "'response'", "'logs'", "'s3'"]),
        ({"function_name": "f", "assets": [{"key": "a"}], "client": {"chanel": "logs"}},
         ["client", "chanel", "Extra inputs are not permitted"]),
        ({"function_name": "f", "assets": [{"key": "a"}], "client": {"read_timeout_s": 0.5}},
         ["client", "READ_TIMEOUT_S=0.5 is not valid: the minimum is 1.0"]),
        ({"function_name": "f", "assets": [{"key": "a"}], "fan_out": {"transport": "invoke"}},
         ["fan_out is given but no asset has a partitions_def", "remove fan_out"]),
        ({"function_name": "f", "assets": [{"key": "a"}], "fan_out": {"transport": "pigeon"}},
         ["fan_out", "transport", "'auto', 'sqs' or 'invoke'", "pigeon"]),
    ],
    ids=["no-function-name", "unknown-channel", "unknown-client-setting", "setting-out-of-range",
         "fan-out-unpartitioned", "unknown-transport"],
)
def test_a_bad_defs_yaml_is_refused_naming_what_to_fix(attributes, says):
    with pytest.raises(Exception) as raised:
        with component_defs(attributes, name="bad_lambda_asset"):
            pass
    assert isinstance(raised.value, ComponentTreeException), raised.value
    text = "".join(str(e) for e in (raised.value, raised.value.__cause__) if e)
    assert "bad_lambda_asset" in text, "the error names the defs.yaml"
    for part in says:
        assert part in text, (part, text)


def test_the_scaffolded_defs_yaml_loads_as_one_asset_with_its_check():
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=PipesLambdaComponent, defs_path="my_lambda_asset")
        written = yaml.safe_load((path / "defs.yaml").read_text())
        assert written["attributes"]["function_name"] == "my-pipes-function"
        with sandbox.build_all_defs() as defs:
            assets_def = defs.resolve_assets_def("my_lambda_asset")
    assert [key.name for key in assets_def.check_keys] == ["rows_are_positive"]
    assert assets_def.required_resource_keys >= {"lambda_pipes"}


def test_the_readme_examples_load(monkeypatch: pytest.MonkeyPatch):
    examples = [block.code for block in of_role("component")]
    assert len(examples) >= 2
    monkeypatch.setenv("PIPESKIT_MESSAGES_BUCKET", "my-messages")
    monkeypatch.setenv("PIPESKIT_WORK_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/my-work")
    for example in examples:
        declared = yaml.safe_load(example)
        assert declared["type"] == COMPONENT
        with component_defs(declared["attributes"]) as defs:
            for spec in declared["attributes"]["assets"]:
                assert defs.resolve_assets_def(spec["key"]).specs_by_key[AssetKey(spec["key"])].kinds >= {"lambda"}
            client = next(iter(defs.resources.values()))
            if "fan_out" in declared["attributes"]:
                assert client.messages_bucket == "my-messages", "the template read the environment"
