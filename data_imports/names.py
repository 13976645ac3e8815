"""The newest name of each gas quality site and data item, read from InfluxDB.

Series are keyed on ids; the names are fields written with every point, so the newest one is the
name the API gives now. The dashboards show each id's series under it: a site or data item that
the API renames stays one series, under its new name once the dashboards are written again.
"""

from __future__ import annotations

import json
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from data_imports.project import Project

if t.TYPE_CHECKING:
    from collections.abc import Mapping

NAMED_BY = {
    "sites": ("gas_quality", "site_name", "site_id"),
    "items": ("publications", "publication_name", "publication_id"),
}
"""Each kind of name: the stream that stores it, its field, and the tag that keys it."""
TIMEOUT = 30
ROOT = Path(__file__).resolve().parent.parent


class NamesError(Exception):
    """The names could not be read: the cause, in one line."""


@dataclass(frozen=True)
class Names:
    """The newest name of each gas quality site and data item, by id, as stored."""

    sites: Mapping[str, str] = field(default_factory=dict)
    items: Mapping[str, str] = field(default_factory=dict)


def read_names(env: Mapping[str, str]) -> Names:
    """The names InfluxDB holds (``INFLUXDB_URL``, ``INFLUXDB_TOKEN``, ``INFLUXDB_BUCKET``).

    Raises:
        NamesError: a variable unset, InfluxDB unreachable, or an answer that is not one.
    """
    missing = [v for v in ("INFLUXDB_URL", "INFLUXDB_TOKEN", "INFLUXDB_BUCKET") if not env.get(v)]
    if missing:
        raise NamesError(f"set {', '.join(missing)}")
    url, token, bucket = env["INFLUXDB_URL"], env["INFLUXDB_TOKEN"], env["INFLUXDB_BUCKET"]
    project = Project.load(ROOT)
    found = {}
    for kind, (stream, name, tag) in NAMED_BY.items():
        measurement = project.measurement(stream)  # meltano.yml's, not a user's input
        statement = f'SELECT last("{name}") FROM "{measurement}" GROUP BY "{tag}"'  # noqa: S608
        found[kind] = newest(query(url, token, bucket, statement), tag)
    return Names(**found)


def query(url: str, token: str, bucket: str, statement: str) -> list[dict[str, t.Any]]:
    """The series of an InfluxQL query, through the bucket's DBRP mapping (``/query``).

    Raises:
        NamesError: naming the URL and the cause.
    """
    params = urllib.parse.urlencode({"db": bucket, "q": statement})
    request = urllib.request.Request(  # noqa: S310 (the URL's scheme is checked below)
        f"{url.rstrip('/')}/query?{params}", headers={"Authorization": f"Token {token}"}
    )
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise NamesError(f"INFLUXDB_URL={url} is not an http(s) URL")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise NamesError(f"{url} answered {exc.code} {exc.reason} to an InfluxQL query") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NamesError(f"could not reach {url} ({reason})") from None
    except ValueError:
        raise NamesError(f"{url} answered an InfluxQL query with no JSON") from None
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not results:
        raise NamesError(f"{url} answered an InfluxQL query without results")
    if "error" in results[0]:
        raise NamesError(f"{url}: {results[0]['error']}")
    return list(results[0].get("series") or [])


def newest(series: list[dict[str, t.Any]], tag: str) -> dict[str, str]:
    """Each id's name: the one value of its series (``last``), where it has one."""
    names = {}
    for one in series:
        key = (one.get("tags") or {}).get(tag)
        values = one.get("values") or []
        if key and values and isinstance(values[0][-1], str) and values[0][-1].strip():
            names[key] = values[0][-1].strip()
    return names
