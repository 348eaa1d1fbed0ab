"""The function behind `PipesLambdaComponent`'s tests: reports the asset from its event and extras, and
the check the event names; as a fan-out item, the item (its partition key) too; and the version that ran."""

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda.protocol import ITEM_KEY


def handler(event, context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        rows = int(event["rows"]) * int(pipes.extras.get("multiplier", 1))
        partition = pipes.partition_key if pipes.is_partition_step else None
        pipes.log.info(f"{rows} rows for partition {partition}")
        pipes.report_asset_materialization(
            metadata={
                "rows": {"raw_value": rows, "type": "int"},
                "partition": {"raw_value": partition, "type": "__infer__"},
                "item": {"raw_value": event.get(ITEM_KEY), "type": "__infer__"},
                "function_version": {"raw_value": context.function_version, "type": "text"},
            },
        )
        if event.get("check_name"):
            pipes.report_asset_check(event["check_name"], passed=rows > 0, metadata={"rows": rows})
    return {"rows": rows}
