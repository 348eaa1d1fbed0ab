"""The S3 channel's listing and batched deletes (pipeskit.channels.chunks) against the local AWS's S3."""

import uuid

import pytest
from botocore.exceptions import ClientError

from pipeskit.channels.chunks import DELETE_BATCH, delete_keys, list_keys


def test_listing_follows_continuation_tokens_and_deleting_goes_in_batches(local_aws) -> None:
    s3 = local_aws.client("s3")
    bucket = f"chunks-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    keys = [f"session/attempt-a/{n}.json" for n in range(1, DELETE_BATCH + 6)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    s3.put_object(Bucket=bucket, Key="sessionless/1.json", Body=b"{}")  # shares the prefix's text, not its folder
    listed, requests = list_keys(s3, bucket, "session")
    assert sorted(listed) == sorted(keys) and requests == 2, "1,005 keys: two pages of at most 1,000"
    assert delete_keys(s3, bucket, listed) == 2, "two batches of at most 1,000"
    assert list_keys(s3, bucket, "session") == ([], 1)


def test_a_refused_delete_stops_unless_told_to_keep_going(local_aws) -> None:
    s3 = local_aws.client("s3", retries=0)  # no such bucket: every batch is refused
    with pytest.raises(ClientError, match="NoSuchBucket"):
        delete_keys(s3, "no-such-bucket-here", ["a"])
    assert delete_keys(s3, "no-such-bucket-here", ["a"], keep_going=True) == 0
