"""A local S3-compatible server for the tests: moto's server on loopback, as a subprocess.

:class:`LocalS3` starts ``python -m moto.server`` on 127.0.0.1 on a free port, in a session of
its own, and stops it by its PID. By default it accepts any key, as a bucket reached with an
instance role would; ``check_keys=True`` starts one that refuses every key it does not know
(moto's IAM checks from the first request on), so a wrong key is refused as S3 refuses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t

import boto3

from testkit.processes import free_port, http_status, stop_process, wait_until

if t.TYPE_CHECKING:
    from pathlib import Path

KEY_ID, SECRET = "testkit-key", "testkit-secret"
REGION = "us-east-1"


class LocalS3:
    """moto's S3 server on loopback; :meth:`client` talks to it with boto3."""

    def __init__(self, workdir: Path, *, check_keys: bool = False) -> None:
        """Prepare the port; nothing starts before :meth:`start`."""
        self.workdir = workdir
        self.check_keys = check_keys
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalS3:
        """Start the server; return once it answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MOTO_CALL_RESET_API": "false"}
        if self.check_keys:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        with (self.workdir / "moto.log").open("ab") as log:
            self._server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            wait_until(lambda: http_status(f"{self.url}/moto-api/") == 200, "moto's server", 60)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (its buckets go with it)."""
        stop_process(self._server)
        self._server = None

    def client(self) -> t.Any:  # noqa: ANN401 (boto3's client has no public type)
        """A boto3 S3 client of this server."""
        return boto3.session.Session(
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION
        ).client("s3", endpoint_url=self.url)

    def create_bucket(self, name: str) -> None:
        """Create a bucket."""
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The keys of the objects in a bucket under ``prefix``."""
        found = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in found.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        """The body of one object."""
        return bytes(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    def write(self, bucket: str, key: str, body: bytes) -> None:
        """Write one object."""
        self.client().put_object(Bucket=bucket, Key=key, Body=body)

    def state_env(self, uri: str) -> dict[str, str]:
        """What Meltano needs to keep its state at ``uri`` (``s3://bucket/prefix``) here."""
        return {
            "MELTANO_STATE_BACKEND_URI": uri,
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": REGION,
        }
