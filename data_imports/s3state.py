"""Meltano's state in S3: the runner's lease on a job across hosts, and why a bucket is refused.

Meltano keeps a job's state at ``<prefix>/<state_id>/state.json`` and takes its own lock
(``<prefix>/<state_id>/lock``) only for the seconds of a state write: a run that finds it waits
until it is ``state_backend.lock_timeout_seconds`` (10) old, then takes it over. It does not keep
two hosts from running the same job. The runner does: before a run it creates
``<prefix>/<state_id>/run-etl.lease`` with a conditional write (``If-None-Match: *``), so of two
hosts only one gets it; it renews the lease every :data:`RENEW_SECONDS` while the run goes on and
deletes it at the end. A lease that was not renewed for :data:`LEASE_SECONDS` (its host was
killed or lost) is taken over with a write conditioned on its ETag, so again only one host wins.

The S3 client is made as Meltano makes its own: Meltano's keys (``state_backend.s3.*``, or
user:password in the URI) with its ``endpoint_url``, else boto3's default chain (the instance
role on EC2) with ``AWS_ENDPOINT_URL_S3`` for an S3-compatible store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import typing as t
import urllib.parse
from dataclasses import dataclass

import boto3
import botocore.config
import botocore.exceptions

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

LEASE_NAME = "run-etl.lease"
LEASE_SECONDS = 300.0
"""A lease not renewed for this long belongs to a host that is gone: another may take it."""
RENEW_SECONDS = 60.0
TAKEN = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
REFUSED_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
BOTO_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
CLIENT_CONFIG = botocore.config.Config(
    user_agent_extra="data-imports",
    connect_timeout=5,
    read_timeout=20,
    retries={"max_attempts": 3, "mode": "standard"},
)


class Unusable(Exception):  # noqa: N818 (a bucket that cannot be used; the message says why)
    """The state backend cannot be used; the message is one sentence naming it and the fix."""


class Held(Exception):  # noqa: N818 (another host's run; the message says whose)
    """Another host holds the job's lease; the message names it."""


@dataclass(frozen=True)
class Location:
    """Where Meltano keeps states: ``s3://bucket/prefix``."""

    uri: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> Location | None:
        """The location of an ``s3://`` URI (its keys left out); None for another backend."""
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme != "s3" or not parts.hostname:
            return None
        prefix = parts.path.strip("/")
        return cls(f"s3://{parts.hostname}/{prefix}".rstrip("/"), parts.hostname, prefix)

    def key(self, state_id: str, name: str) -> str:
        """The key of one object of a state: ``prefix/state_id/name``."""
        return "/".join(part for part in (self.prefix, state_id, name) if part)


def client(uri: str, env: Mapping[str, str], meltano_yml: Mapping[str, t.Any]) -> t.Any:  # noqa: ANN401 (boto3's client has no public type)
    """An S3 client with the credentials and endpoint Meltano uses for ``uri``."""
    parts = urllib.parse.urlsplit(uri)
    declared = (meltano_yml.get("state_backend") or {}).get("s3") or {}

    def setting(name: str) -> str:
        variable = f"MELTANO_STATE_BACKEND_S3_{name.upper()}"
        return str(env.get(variable) or declared.get(name) or "")

    key_id = setting("aws_access_key_id") or urllib.parse.unquote(parts.username or "")
    secret = setting("aws_secret_access_key") or urllib.parse.unquote(parts.password or "")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    if key_id and secret:
        session = boto3.session.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region
        )
        return session.client(
            "s3", endpoint_url=setting("endpoint_url") or None, config=CLIENT_CONFIG
        )
    if key_id or secret:
        given = "aws_access_key_id" if key_id else "aws_secret_access_key"
        raise Unusable(
            f"the state backend {_without_keys(uri)} has Meltano's {given} without the "
            "other: set both (MELTANO_STATE_BACKEND_S3_AWS_ACCESS_KEY_ID and _SECRET_ACCESS_KEY), "
            "or neither to use the instance role"
        )
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=region,
        profile_name=env.get("AWS_PROFILE") or None,
    )
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    return session.client("s3", endpoint_url=endpoint, config=CLIENT_CONFIG)


def _without_keys(uri: str) -> str:
    location = Location.parse(uri)
    return location.uri if location else uri


def why(exc: Exception, location: Location) -> str:  # noqa: PLR0911 (one return per cause)
    """Why S3 refused a request, and the fix, from the error's code and type."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code in {"NoSuchBucket", "404"}:
            return (
                f'the bucket "{location.bucket}" does not exist ({code}): create it, or correct '
                "MELTANO_STATE_BACKEND_URI"
            )
        if code in REFUSED_KEYS:
            return (
                f"S3 refused the credentials ({code}): check the host's instance role, or the "
                "AWS keys the run gets"
            )
        if code == "AccessDenied" or status == 403:  # noqa: PLR2004 (HTTP 403)
            return (
                f"access denied ({code or status}): the instance role (or keys) needs "
                f"s3:GetObject, s3:PutObject and s3:DeleteObject on {location.bucket}/"
                f"{location.prefix}/* and s3:ListBucket on {location.bucket}"
            )
        return f"S3 answered {status} {code}".rstrip()
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        url = urllib.parse.urlsplit(str(exc.kwargs.get("endpoint_url") or ""))
        return (
            f"S3 at {url.scheme}://{url.netloc} cannot be reached: check the network, or "
            "AWS_ENDPOINT_URL_S3"
        )
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return (
            "no AWS credentials were found: give the host an instance role, or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region is set: set AWS_DEFAULT_REGION (the bucket's region)"
    return f"{type(exc).__name__}: {exc}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Lease:
    """The runner's hold on one state ID across hosts; :meth:`take`, then :meth:`release`."""

    def __init__(  # noqa: PLR0913
        self,
        s3: t.Any,  # noqa: ANN401 (boto3's client has no public type)
        location: Location,
        state_id: str,
        job: str,
        *,
        seconds: float = LEASE_SECONDS,
        renew_every: float = RENEW_SECONDS,
    ) -> None:
        """Prepare the lease of ``state_id``; nothing is written before :meth:`take`."""
        self.s3, self.location, self.state_id, self.job = s3, location, state_id, job
        self.seconds, self.renew_every = seconds, renew_every
        self.key = location.key(state_id, LEASE_NAME)
        self.etag = ""
        self._started = ""
        self.lost = ""
        """Why a renewal failed ('' while the lease is held)."""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def uri(self) -> str:
        """The lease object's URI."""
        return f"s3://{self.location.bucket}/{self.key}"

    def _body(self, started: str = "") -> bytes:
        return json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "job": self.job,
                "state_id": self.state_id,
                "started": started or _stamp(_now()),
                "expires": _stamp(_now() + dt.timedelta(seconds=self.seconds)),
            }
        ).encode()

    def _put(self, body: bytes, **condition: str) -> None:
        answer = self.s3.put_object(
            Bucket=self.location.bucket,
            Key=self.key,
            Body=body,
            ContentType="application/json",
            **condition,
        )
        self.etag = str(answer["ETag"])

    def take(self) -> None:
        """Create the lease, or take over an expired one.

        Raises:
            Held: another host's run holds it.
            Unusable: S3 refused the request.
        """
        try:
            self._put(self._body(), IfNoneMatch="*")
        except botocore.exceptions.ClientError as exc:
            if _code(exc) not in TAKEN:
                raise Unusable(self._unusable(exc)) from None
            self._take_over()
        except botocore.exceptions.BotoCoreError as exc:
            raise Unusable(self._unusable(exc)) from None
        self._started = _stamp(_now())
        self._renewer = threading.Thread(target=self._renew, daemon=True)
        self._renewer.start()

    def _take_over(self) -> None:
        """Overwrite the lease of a host that stopped renewing it; raise :class:`Held` if alive."""
        try:
            found = self.s3.get_object(Bucket=self.location.bucket, Key=self.key)
            holder = json.loads(found["Body"].read())
            expires = dt.datetime.fromisoformat(str(holder["expires"]))
        except BOTO_ERRORS as exc:
            if _code(exc) != "NoSuchKey":
                raise Unusable(self._unusable(exc)) from None
            holder, expires, found = {}, _now(), {"ETag": ""}
        except (ValueError, KeyError, TypeError):  # not a lease of ours: taken as expired
            holder, expires = {}, _now()
        if expires > _now():
            raise Held(self._held(holder))
        try:
            if found["ETag"]:
                self._put(self._body(), IfMatch=str(found["ETag"]))
            else:
                self._put(self._body(), IfNoneMatch="*")
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in TAKEN:  # another host took it over first
                raise Held(self._held(holder)) from None
            raise Unusable(self._unusable(exc)) from None

    def _held(self, holder: Mapping[str, t.Any]) -> str:
        who = f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}"
        return (
            f"another run of {self.job} holds its state ({self.state_id}) in S3 ({who}; lease "
            f"{self.uri} until {holder.get('expires')}): this one stops here"
        )

    def _unusable(self, exc: Exception) -> str:
        return f"the state backend {self.location.uri} cannot be used: {why(exc, self.location)}"

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self._put(self._body(self._started), IfMatch=self.etag)
            except BOTO_ERRORS as exc:
                self.lost = why(exc, self.location)

    def release(self) -> None:
        """Stop renewing; delete the lease if it is still this run's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        with contextlib.suppress(
            botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError
        ):
            found = self.s3.head_object(Bucket=self.location.bucket, Key=self.key)
            if found["ETag"] == self.etag:
                self.s3.delete_object(Bucket=self.location.bucket, Key=self.key)


def probe(uri: str, state_id: str, env: Mapping[str, str], meltano_yml: Mapping[str, t.Any]) -> str:
    """Why the state of ``state_id`` cannot be read from S3 ('' when it can, or is absent)."""
    location = Location.parse(uri)
    if location is None:
        return ""
    try:
        s3 = client(uri, env, meltano_yml)
        s3.head_object(Bucket=location.bucket, Key=location.key(state_id, "state.json"))
    except Unusable as exc:
        return str(exc)
    except BOTO_ERRORS as exc:
        if _code(exc) in {"404", "NoSuchKey"}:
            return ""
        return f"the state backend {location.uri} cannot be used: {why(exc, location)}"
    return ""


def _code(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str((exc.response.get("Error") or {}).get("Code") or "")
    return ""


@contextlib.contextmanager
def leases(  # noqa: PLR0913
    uri: str,
    state_ids: list[str],
    job: str,
    *,
    env: Mapping[str, str],
    meltano_yml: Mapping[str, t.Any],
    on_lost: Callable[[str], None],
) -> t.Iterator[None]:
    """Hold the lease of every state ID of a job while the block runs (nothing for non-S3 URIs).

    Raises :class:`Held` when another host runs the job, :class:`Unusable` when S3 refuses.
    ``on_lost`` is told at the end if a renewal failed during the run.
    """
    location = Location.parse(uri)
    if location is None:
        yield
        return
    s3 = client(uri, env, meltano_yml)
    taken: list[Lease] = []
    try:
        for state_id in state_ids:
            lease = Lease(s3, location, state_id, job)
            lease.take()
            taken.append(lease)
        yield
    finally:
        for lease in taken:
            lease.release()
            if lease.lost:
                on_lost(f"the lease {lease.uri} could not be renewed: {lease.lost}")
