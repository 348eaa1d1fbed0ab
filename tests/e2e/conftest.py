"""The reference stack deployed with the real CDK CLI to the local AWS, once per test module."""

from collections.abc import Iterator

import pytest

from infra.constants import PROJECT_DIR
from infra.demo import DemoReport, deploy
from pipeskit.cdk_cli import CdkCli
from pipeskit.local import LocalAWS


@pytest.fixture(scope="module")
def deployed(local_aws: LocalAWS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoReport]:
    """`cdk bootstrap` and `cdk deploy` of the reference stack (its own ``cdk.out``: modules deploy in parallel),
    on the local AWS enforcing IAM, as `make demo` does: the stack's own policies are what its functions
    and the orchestrator (`infra.demo.orchestrator_env`) may do."""
    with local_aws.override(iam=True):
        report = DemoReport(endpoint=local_aws.endpoint_url)
        cli = CdkCli(PROJECT_DIR, output_dir=tmp_path_factory.mktemp("cdk.out"))
        deploy(report, cli, local_aws.env(), local_aws.settings.account_id, local_aws.settings.region)
        yield report
