"""Why a request to InfluxDB failed, in one classification: HTTP statuses and exception types.

:func:`classify` reads an exception the client raised: InfluxDB's answer when one came (an
``ApiException`` with its status, headers and JSON body), else the cause of the failed
connection, found by type in the exception's chain (arguments, urllib3's ``reason``,
``__cause__`` and ``__context__``). No text of an exception is matched.

=====================  =====================================================================
Kind                   What
=====================  =====================================================================
UNRESOLVED             ``socket.gaierror``, urllib3's ``NameResolutionError``
REFUSED                ``ConnectionRefusedError``
TIMEOUT                ``TimeoutError`` (``socket.timeout``), urllib3's ``TimeoutError``
                       (read or connect timeout; not ``NewConnectionError``, its subclass)
TLS                    ``ssl.SSLError`` (``SSLCertVerificationError`` too), urllib3's
                       ``SSLError``
CLOSED                 ``ConnectionResetError``, ``ConnectionAbortedError``,
                       ``BrokenPipeError``, urllib3's ``ProtocolError``
UNREACHABLE            any other failure without an answer
REDIRECT               3xx
NOT_INFLUXDB           1xx, 2xx other than 204 (a web page, a login proxy)
INVALID                400, 422 (points refused; a 422 stored the others)
UNAUTHORIZED           401 (the token)
FORBIDDEN              403 (the token's rights)
NOT_FOUND              404 (org or bucket)
TOO_LARGE              413
BUSY                   429, 503 (``Retry-After`` kept)
SERVER                 other 5xx
OTHER                  any other status
=====================  =====================================================================
"""

from __future__ import annotations

import enum
import json
import socket
import ssl
import typing as t
from dataclasses import dataclass, field

import urllib3.exceptions
from influxdb_client.rest import ApiException

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class Kind(enum.Enum):
    """What went wrong; the values of failures without an answer are their words."""

    UNRESOLVED = "name does not resolve"
    REFUSED = "connection refused"
    TIMEOUT = "no answer in time"
    TLS = "TLS failed"
    CLOSED = "connection closed before an answer"
    UNREACHABLE = "no connection"
    REDIRECT = "redirect"
    NOT_INFLUXDB = "not InfluxDB"
    INVALID = "points refused"
    UNAUTHORIZED = "token rejected"
    FORBIDDEN = "token not allowed"
    NOT_FOUND = "org or bucket not found"
    TOO_LARGE = "batch too large"
    BUSY = "busy"
    SERVER = "server error"
    OTHER = "other answer"


_STATUSES = {
    400: Kind.INVALID,
    401: Kind.UNAUTHORIZED,
    403: Kind.FORBIDDEN,
    404: Kind.NOT_FOUND,
    413: Kind.TOO_LARGE,
    422: Kind.INVALID,
    429: Kind.BUSY,
    503: Kind.BUSY,
}

# Failures without an answer, most telling first: every exception of the chain is tried
# against a kind before the next kind (a refused connection is urllib3's
# ``NewConnectionError``, a subclass of its ``TimeoutError``, caused by the refusal).
_Types = tuple[type[BaseException], ...]
_CONNECTION: tuple[tuple[Kind, _Types, _Types], ...] = (
    (Kind.UNRESOLVED, (socket.gaierror, urllib3.exceptions.NameResolutionError), ()),
    (Kind.REFUSED, (ConnectionRefusedError,), ()),
    (
        Kind.TIMEOUT,
        (TimeoutError, urllib3.exceptions.TimeoutError),
        (urllib3.exceptions.NewConnectionError,),
    ),
    (Kind.TLS, (ssl.SSLError, urllib3.exceptions.SSLError), ()),
    (
        Kind.CLOSED,
        (
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
            urllib3.exceptions.ProtocolError,
        ),
        (),
    ),
)


@dataclass(frozen=True)
class Failure:
    """Why a request failed.

    Attributes:
        kind: what went wrong.
        status: the HTTP status of the answer; None when none came.
        message: InfluxDB's message (the ``message`` of its JSON body), or, without an
            answer, the cause in a few words.
        headers: the answer's headers.
    """

    kind: Kind
    status: int | None = None
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        """Whether an answer came (a status), as opposed to a failed connection."""
        return self.status is not None

    def header(self, name: str) -> str | None:
        """A header of the answer, whatever the case of its name."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and those it wraps: arguments, urllib3's ``reason``, cause and context."""
    todo, seen = [error], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [*current.args, getattr(current, "reason", None)]
        wrapped += [current.__cause__, current.__context__]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def classify(error: BaseException) -> Failure:
    """Why a request failed: from InfluxDB's answer if one came, else from the chain's types.

    Args:
        error: what the client raised (``ApiException``, urllib3's errors, ``OSError``), or
            an ``ApiException`` made of an answer that is not an error to the client (a 200).
    """
    chain = list(causes(error))
    for cause in chain:
        if isinstance(cause, ApiException) and cause.status:
            return answer(int(cause.status), cause.headers or {}, cause.body, cause.reason)
    for kind, types, excluded in _CONNECTION:
        for cause in chain:
            if isinstance(cause, types) and not isinstance(cause, excluded):
                return Failure(kind, message=_words(kind, cause, chain))
    return Failure(Kind.UNREACHABLE, message=_words(Kind.UNREACHABLE, chain[-1], chain))


def answer(
    status: int, headers: Mapping[str, str], body: bytes | str | None, reason: str | None = None
) -> Failure:
    """The failure an answer other than 204 means (see the module's table)."""
    if 300 <= status < 400:  # noqa: PLR2004
        kind = Kind.REDIRECT
    elif status < 300:  # noqa: PLR2004
        kind = Kind.NOT_INFLUXDB
    else:
        kind = _STATUSES.get(status) or (Kind.SERVER if status >= 500 else Kind.OTHER)  # noqa: PLR2004
    headers = dict(headers.items())
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return Failure(kind, status, influxdb_message(body, content_type, reason), headers)


def influxdb_message(
    body: bytes | str | None, content_type: str = "", reason: str | None = None
) -> str:
    """The ``message`` of InfluxDB's JSON error body (``{"code": ..., "message": ...}``).

    InfluxDB 1.x says ``{"error": ...}``; a body that is not JSON is given as it is, but a
    web page (``text/html``) by its status's reason phrase.
    """
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        message = parsed.get("message") or parsed.get("error")
        if message:
            return str(message)
    if "html" in content_type.lower() or not text.strip():
        return reason or ""
    return text.strip()


def _words(kind: Kind, cause: BaseException, chain: list[BaseException]) -> str:
    """The cause of a failed connection in a few words."""
    if kind is Kind.TLS:
        for link in chain:
            if isinstance(link, ssl.SSLCertVerificationError):
                why = getattr(link, "verify_message", None) or link.strerror or link
                return f"TLS certificate not trusted: {why}"
        tls = [link for link in chain if isinstance(link, ssl.SSLError)]
        reason = next((getattr(link, "reason", None) or link.strerror for link in tls), None)
        return f"TLS failed: {reason or cause}"
    if kind is not Kind.UNREACHABLE:
        return kind.value
    errors = [link for link in chain if isinstance(link, OSError) and link.strerror]
    if errors:
        return str(errors[-1].strerror)
    if isinstance(cause, ApiException):  # the client's own refusal, with its reason
        return str(cause.reason)
    return str(cause) or type(cause).__name__
