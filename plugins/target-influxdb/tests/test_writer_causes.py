"""Why a write failed, read from exception types and HTTP statuses, and TLS through one client.

Failures are built as urllib3 and the socket layer raise them (or provoked on loopback), and
classified by :func:`target_influxdb.causes.classify`; a TLS server on 127.0.0.1 with a
self-signed certificate shows that ``verify_ssl`` switches every request the writer makes.
"""

from __future__ import annotations

import datetime as dt
import errno
import gzip
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import typing as t
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from influxdb_client.rest import ApiException
from singer_sdk.exceptions import ConfigValidationError

from target_influxdb.causes import Kind, classify
from target_influxdb.rejections import Conflict
from target_influxdb.target import TargetInfluxDB, writer_from_config
from target_influxdb.writers import InfluxDBWriter, RejectedPointsError, WriteError
from testkit.redirects import LoopbackServer, Received

TOKEN = "causes-token"
POINT = ("m,k=1 v=1.5", 1_767_225_600_000_000_000)

# -- exception chains, as urllib3 and the socket layer build them


def pool() -> urllib3.HTTPConnectionPool:
    return urllib3.HTTPConnectionPool("influxdb.example", 8086)


def retried(reason: Exception) -> urllib3.exceptions.MaxRetryError:
    """urllib3's MaxRetryError once the retries are spent, raised ``from`` its reason."""
    error = urllib3.exceptions.MaxRetryError(pool(), "/api/v2/write", reason)
    error.__cause__ = reason
    return error


def caused(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def connection() -> urllib3.connection.HTTPConnection:
    return urllib3.connection.HTTPConnection("influxdb.example", 8086)


def name_not_resolved() -> Exception:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return caused(
        urllib3.exceptions.NameResolutionError("influxdb.example", connection(), gai), gai
    )


def refused() -> Exception:
    return caused(
        urllib3.exceptions.NewConnectionError(connection(), "Failed to establish a new connection"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    )


def untrusted() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"  # type: ignore[attr-defined]
    return error


def tls_as_the_client_reports_it() -> Exception:
    """influxdb-client's REST layer raises a status-0 ApiException inside ``except SSLError``."""

    def handshake() -> None:
        raise urllib3.exceptions.SSLError(untrusted())

    def request() -> None:
        try:
            handshake()
        except urllib3.exceptions.SSLError as exc:
            raise ApiException(status=0, reason=f"SSLError\n{exc}")  # noqa: B904 (the client's)

    with pytest.raises(ApiException) as raised:
        request()
    return raised.value


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (retried(name_not_resolved()), Kind.UNRESOLVED, "name does not resolve"),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), Kind.UNRESOLVED, None),
        # NewConnectionError is a subclass of urllib3's TimeoutError: the refusal comes first
        (retried(refused()), Kind.REFUSED, "connection refused"),
        (refused(), Kind.REFUSED, "connection refused"),
        (
            retried(urllib3.exceptions.ReadTimeoutError(pool(), "/", "Read timed out.")),
            Kind.TIMEOUT,
            "no answer in time",
        ),
        (
            caused(
                urllib3.exceptions.ConnectTimeoutError(connection(), "timed out"), TimeoutError()
            ),
            Kind.TIMEOUT,
            "no answer in time",
        ),
        (TimeoutError("timed out"), Kind.TIMEOUT, "no answer in time"),
        (
            retried(urllib3.exceptions.SSLError(untrusted())),
            Kind.TLS,
            "TLS certificate not trusted: self-signed certificate",
        ),
        (
            tls_as_the_client_reports_it(),
            Kind.TLS,
            "TLS certificate not trusted: self-signed certificate",
        ),
        (
            retried(urllib3.exceptions.SSLError(ssl.SSLError(1, "[SSL] wrong version number"))),
            Kind.TLS,
            None,
        ),
        (
            retried(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.", http.client.RemoteDisconnected("closed")
                )
            ),
            Kind.CLOSED,
            "connection closed before an answer",
        ),
        (
            retried(
                caused(
                    urllib3.exceptions.NewConnectionError(connection(), "Failed"),
                    OSError(errno.ENETUNREACH, "Network is unreachable"),
                )
            ),
            Kind.UNREACHABLE,
            "Network is unreachable",
        ),
        # the words of an exception do not make its kind: only types do
        (urllib3.exceptions.HTTPError("Name or service not known"), Kind.UNREACHABLE, None),
        (OSError("connection refused, timed out"), Kind.UNREACHABLE, None),
    ],
)
def test_a_failed_connection_is_classified_by_the_types_in_its_chain(error, kind, words):
    failure = classify(error)
    assert failure.kind is kind
    assert not failure.answered
    if words is not None:
        assert failure.message == words


def test_a_status_0_from_the_client_with_nothing_behind_it_is_no_connection():
    failure = classify(ApiException(status=0, reason="Cannot prepare a request message"))
    assert (failure.kind, failure.message) == (Kind.UNREACHABLE, "Cannot prepare a request message")
    assert not failure.answered


def answered(status: int, body: bytes = b"", **headers: str) -> ApiException:
    response = urllib3.HTTPResponse(
        body=body, headers=headers, status=status, reason=http.client.responses.get(status)
    )
    return ApiException(http_resp=response)


def influx_body(code: str, message: str) -> bytes:
    return json.dumps({"code": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, Kind.NOT_INFLUXDB),
        (301, Kind.REDIRECT),
        (307, Kind.REDIRECT),
        (400, Kind.INVALID),
        (401, Kind.UNAUTHORIZED),
        (403, Kind.FORBIDDEN),
        (404, Kind.NOT_FOUND),
        (405, Kind.OTHER),
        (413, Kind.TOO_LARGE),
        (422, Kind.INVALID),
        (429, Kind.BUSY),
        (500, Kind.SERVER),
        (502, Kind.SERVER),
        (503, Kind.BUSY),
    ],
)
def test_an_answer_is_classified_by_its_status_and_its_json_message_read(status, kind):
    body = influx_body("some code", f"the message of {status}")
    failure = classify(retried(answered(status, body, **{"Retry-After": "7"})))
    assert (failure.kind, failure.status) == (kind, status)
    assert failure.message == f"the message of {status}"
    assert failure.header("retry-after") == "7"


def test_messages_of_influxdb_1x_of_a_web_page_and_of_plain_text():
    assert classify(answered(400, b'{"error":"unable to parse"}')).message == "unable to parse"
    html = answered(502, b"<html><body>Bad gateway</body></html>", **{"Content-Type": "text/html"})
    assert classify(html).message == "Bad Gateway"
    assert classify(answered(500, b"  plain words\n")).message == "plain words"
    assert classify(answered(503)).message == "Service Unavailable"


# -- the words of each cause, against servers on loopback


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def writer(url: str, **settings: t.Any) -> InfluxDBWriter:
    defaults: dict[str, t.Any] = {"max_retries": 0, "retry_interval": 0, "timeout": 5}
    return InfluxDBWriter(url=url, token=TOKEN, org="o", bucket="b", **defaults | settings)


def test_a_closed_port_and_a_name_that_does_not_resolve_are_named():
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(WriteError) as failure:
        writer(url).check()
    assert str(failure.value) == (
        f"could not reach InfluxDB at {url} (connection refused): start InfluxDB, or check "
        "INFLUXDB_URL (the `url` setting)"
    )
    with pytest.raises(WriteError) as failure:
        writer(url).write("s", [POINT])
    assert str(failure.value).startswith(
        f'InfluxDB at {url} did not accept the batch of stream "s" after 0 retries '
        "(connection refused); check that InfluxDB is up"
    )
    with pytest.raises(WriteError, match=r"\(name does not resolve\): start InfluxDB"):
        writer("http://influxdb.invalid:8086").write_once("run", [POINT])


def test_a_server_that_never_answers_is_no_answer_in_time():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections wait in the backlog, never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(WriteError, match=r"\(no answer in time\): start InfluxDB"):
            writer(url, timeout=0.5).check()
        with pytest.raises(WriteError, match=r"after 0 retries \(no answer in time\)"):
            writer(url, timeout=0.5).write("s", [POINT])


def test_a_busy_answer_names_the_status_message_and_retry_after():
    def busy(request: Received) -> tuple[int, dict[str, str], bytes]:
        if request.path == "/ping":
            return 204, {}, b""
        headers = {"Content-Type": "application/json", "Retry-After": "30"}
        return 503, headers, influx_body("unavailable", "too busy")

    with LoopbackServer(busy) as server:
        with pytest.raises(WriteError) as failure:
            writer(server.url).write("s", [POINT])
        assert str(failure.value) == (
            f'InfluxDB at {server.url} did not accept the batch of stream "s" after 0 retries '
            "(503 too busy, Retry-After 30); check that InfluxDB is up, or raise "
            "`max_retries`/`timeout`"
        )
        writer(server.url).check()  # InfluxDB is there, busy: batches will retry
        with pytest.raises(WriteError, match=r"answered 503 to a write: too busy$"):
            writer(server.url).write_once("run", [POINT])


# -- TLS on loopback, with a self-signed certificate


def self_signed(folder: t.Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes


class TLSInfluxDB:
    """InfluxDB's ping and write API over TLS on 127.0.0.1: /ping 204, an empty write 400, a
    write with points 204; the requests it received are kept (gzip bodies uncompressed)."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.received: list[Request] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: t.Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                received.append(Request("GET", self.path, b""))
                self._answer(204 if self.path == "/ping" else 404)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append(Request("POST", self.path, body))
                if self.headers.get("Authorization") != f"Token {TOKEN}":
                    self._answer(401, influx_body("unauthorized", "unauthorized access"))
                elif not body:
                    self._answer(400, influx_body("invalid", "writing requires points"))
                else:
                    self._answer(204)

        return Handler

    def __enter__(self) -> t.Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def tls_influxdb(tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    with TLSInfluxDB(cert_file, key_file) as server:
        yield server, cert_file


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_without_verify_ssl_ping_check_batches_and_points_go_over_tls(tls_influxdb):
    server, _ = tls_influxdb
    unverified = writer(server.url, verify_ssl=False)
    unverified.check()
    assert unverified.write("s", [POINT]) == 'bucket "b" (precision s)'
    assert unverified.write_once("run", [("run,job=j records=1i", 1)]) == 'bucket "b"'
    assert [(r.method, r.path.split("?")[0], r.body) for r in server.received] == [
        ("GET", "/ping", b""),
        ("POST", "/api/v2/write", b""),
        ("POST", "/api/v2/write", b"m,k=1 v=1.5 1767225600"),
        ("POST", "/api/v2/write", b"run,job=j records=1i 1"),
    ]


def test_with_verify_ssl_a_self_signed_certificate_is_refused_naming_tls(tls_influxdb):
    server, _ = tls_influxdb
    verified = writer(server.url, verify_ssl=True)
    cause = "TLS certificate not trusted: self"
    advice = "or set `verify_ssl` to false for a server you trust"
    for attempt in (verified.check, lambda: verified.write_once("run", [POINT])):
        with pytest.raises(WriteError) as failure:
            attempt()
        text = str(failure.value)
        assert text.startswith(f"could not reach InfluxDB at {server.url} ({cause}")
        assert advice in text
    with pytest.raises(WriteError) as failure:
        verified.write("s", [POINT])
    assert f"({cause}" in str(failure.value)
    assert advice in str(failure.value)
    assert server.received == []  # nothing reached the server: the handshake stopped it


def test_with_verify_ssl_and_its_ca_the_certificate_is_trusted(tls_influxdb):
    # the `ssl_ca_cert` setting, as the target reads its config
    server, cert_file = tls_influxdb
    config = {"url": server.url, "token": TOKEN, "org": "o", "bucket": "b", "max_retries": 0}
    verified = writer_from_config({**config, "ssl_ca_cert": str(cert_file)})
    assert isinstance(verified, InfluxDBWriter)
    verified.check()
    verified.write("s", [POINT])
    assert [r.path.split("?")[0] for r in server.received] == ["/ping", *["/api/v2/write"] * 2]


# -- InfluxDB's wording of a partial write, against the real engine


def test_a_partial_writes_count_and_conflict_are_read_from_the_real_engines_answer(
    influxdb, bucket
):
    real = InfluxDBWriter(url=influxdb.url, token=influxdb.token, org=influxdb.org, bucket=bucket)
    stamp = 1_767_225_600_000_000_000
    real.write("m", [("m,k=1 v=1i", stamp)])
    batch = [("m,k=2 v=1.5", stamp + 1000), ("m,k=3 w=1.5", stamp + 2000)]
    refusal = real._send("m", batch, "ns")
    assert refusal is not None
    assert refusal.status == 422
    assert refusal.dropped == 1
    assert refusal.conflict == Conflict("m", "v", "integer", "float")
    with pytest.raises(RejectedPointsError) as rejected:
        real.write("m", batch)
    assert [p for r in rejected.value.refusals for p in r.points] == batch[:1]
    assert (rejected.value.rejected, rejected.value.written) == (1, 1)


def test_an_ssl_ca_cert_that_is_not_a_file_is_refused_before_any_request(tmp_path):
    missing = tmp_path / "ca.pem"
    config = {"url": "https://127.0.0.1:9", "token": TOKEN, "org": "o", "bucket": "b"}
    with pytest.raises(ConfigValidationError) as refused:
        TargetInfluxDB(config={**config, "ssl_ca_cert": str(missing)}, parse_env_config=False)
    assert str(refused.value) == (
        f"`ssl_ca_cert` is {missing}, which is not a file: give the path of a PEM file of CA "
        "certificates, or unset it to use the system's"
    )
