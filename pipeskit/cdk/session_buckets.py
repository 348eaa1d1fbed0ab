"""S3 buckets for Pipes sessions: context payloads and chunked messages."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct


class SessionBuckets(Construct):
    """The context bucket and the messages bucket.

    Both block public access, refuse plain HTTP, encrypt at rest and expire session objects after
    ``expiry_days`` (sessions are short-lived; the lifecycle rule is the safety net behind the
    client's own clean-up).

    Args:
        scope: parent construct.
        construct_id: construct id.
        expiry_days: days after which session objects are deleted.
        removal_policy: DESTROY for a dev stage, RETAIN for prod.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, expiry_days: int, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.context_bucket = self._bucket("ContextBucket", expiry_days, removal_policy)
        self.messages_bucket = self._bucket("MessagesBucket", expiry_days, removal_policy)

    def _bucket(self, construct_id: str, expiry_days: int, removal_policy: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-session-objects",
                    expiration=Duration.days(expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )
        NagSuppressions.add_resource_suppressions(
            bucket,
            [
                {
                    "id": "AwsSolutions-S1",
                    "reason": "Holds only short-lived Pipes session objects (expired by lifecycle); "
                    "data-plane access is audited through CloudTrail data events where required, "
                    "so a separate access-log bucket would only duplicate it.",
                }
            ],
        )
        return bucket
