"""Where the kit's own boto3 clients point: a profile, a region and an endpoint, else boto3's chain."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from .aws_errors import aws_error


class AwsTarget:
    """The AWS session the kit creates its clients in (clients given by the caller are used as given).

    Args:
        region_name: the region; None: boto3's chain (``AWS_DEFAULT_REGION``, the profile).
        profile_name: the shared-config profile; None: boto3's chain (``AWS_PROFILE``, ``default``).
        endpoint_url: a custom endpoint (e.g. the local AWS); None: boto3's (``AWS_ENDPOINT_URL``, AWS's own).
    """

    def __init__(
        self, region_name: str | None = None, profile_name: str | None = None, endpoint_url: str | None = None
    ) -> None:
        self.region_name = region_name
        self.profile_name = profile_name
        self.endpoint_url = endpoint_url
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def is_default(self) -> bool:
        """Nothing set: clients come from boto3's default session, exactly as ``boto3.client`` makes them."""
        return self.region_name is None and self.profile_name is None and self.endpoint_url is None

    def client(self, service: str, config: Config | None = None) -> Any:
        """A new boto3 client of ``service`` for this target.

        Raises:
            AwsRegionMissingError: no region is set (the client's ``region_name``, ``AWS_DEFAULT_REGION``, a
                profile's region); other setup errors translated by `pipeskit.aws_errors.aws_error`.
        """
        try:
            if self.is_default:
                return boto3.client(service, config=config)
            return self.session().client(service, endpoint_url=self.endpoint_url, config=config)
        except BotoCoreError as error:
            action = f"creating the kit's {service} client"
            raise aws_error(error, action, nothing_done="No AWS call was made.") from error

    def session(self) -> Any:
        """The boto3 session of this target (created once: reading the profile costs file I/O)."""
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session(profile_name=self.profile_name, region_name=self.region_name)
            return self._session

    def __repr__(self) -> str:
        return (f"AwsTarget(region_name={self.region_name!r}, profile_name={self.profile_name!r}, "
                f"endpoint_url={self.endpoint_url!r})")  # fmt: skip


DEFAULT_TARGET = AwsTarget()
"""boto3's own chain for everything."""
