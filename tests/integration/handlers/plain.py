"""A plain handler that never opens Dagster Pipes."""


def handler(event, context):
    print("doing work without pipes")
    return {"ok": True}
