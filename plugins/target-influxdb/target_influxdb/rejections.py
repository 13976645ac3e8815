"""Points InfluxDB refuses as invalid (400, 422): what was refused, why, and how to go on.

That points were refused is the answer's status (``causes.classify``). Which ones and why
InfluxDB says only in its message's words: a partial write ends ``dropped=N``, a field type
conflict reads ``input field "F" on measurement "M" is type T, already exists as type U``, a
line that cannot be parsed is quoted after ``unable to parse``. Those words, the same in
InfluxDB 1.x and 2.x, are read here and only here; a message that lacks them still fails or
sets aside the whole batch, and the real engine's answers are pinned by
``tests/test_writer_causes.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import typing as t
from dataclasses import dataclass, field

from target_influxdb.lineprotocol import render_lines

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

Points = t.Sequence[tuple[str, int]]

INVALID = frozenset({400, 422})
"""Answers that refuse points for what they are: retrying the same points cannot help."""

SHOWN_CHARS = 300
"""The longest text of a line or of InfluxDB's message that a log message quotes."""

_CONFLICT = re.compile(
    r'input field "(?P<field>(?:[^"\\]|\\.)*)" on measurement "(?P<measurement>(?:[^"\\]|\\.)*)"'
    r" is type (?P<sent>\w+), already exists as type (?P<stored>\w+)"
)
_DROPPED = re.compile(r"dropped=(\d+)\s*$")
# InfluxDB quotes a line it cannot parse whole: `unable to parse '<line> <timestamp>': why`
_QUOTED_LINE = re.compile(r"unable to parse '.*? -?\d+': ", re.DOTALL)
_UNESCAPED_SPACE = re.compile(r"(?<!\\)(?:\\\\)* ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")

# InfluxDB keeps a field's type per shard, and a shard holds one shard group's time range of
# the bucket. Shard groups start at whole multiples of their duration counted from Go's zero
# time (0001-01-01, a Monday), so weekly ones run from Monday 00:00 UTC to the next Monday.
# Days and hours (the durations of buckets with a retention under 6 months) nest in those
# weeks, and a week is the longest default; a bucket given a longer shard group duration
# needs a wider range (`influx bucket list` shows it).
_WEEK_S = 7 * 86_400
_FIRST_MONDAY_S = -3 * 86_400  # 1969-12-29T00:00:00Z, the Monday before the Unix epoch


@dataclass(frozen=True)
class Conflict:
    """A field sent with another type than the one InfluxDB stores it with."""

    measurement: str
    field: str
    stored: str
    sent: str


def parse_conflict(message: str) -> Conflict | None:
    """The field type conflict InfluxDB's message names, if it names one."""
    match = _CONFLICT.search(message)
    if match is None:
        return None
    return Conflict(
        measurement=_unquote(match["measurement"]),
        field=_unquote(match["field"]),
        stored=match["stored"],
        sent=match["sent"],
    )


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def dropped_count(message: str) -> int | None:
    """The ``dropped=N`` that ends InfluxDB's message of a partial write, if it has one."""
    match = _DROPPED.search(message)
    return int(match[1]) if match else None


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """The text on one line, cut in the middle to at most about ``limit`` characters."""
    text = text.replace("\r", " ").replace("\n", " ")
    if len(text) <= limit:
        return text
    tail = min(60, limit // 4)
    head = limit - tail
    return f"{text[:head]} ... ({len(text) - head - tail} characters left out) ... {text[-tail:]}"


def without_quoted_lines(message: str) -> str:
    """InfluxDB's message without the lines it quotes, which the target's message quotes once.

    ``unable to parse '<line>': max key length exceeded`` becomes ``unable to parse the
    rejected line: max key length exceeded``.
    """
    return _QUOTED_LINE.sub("unable to parse the rejected line: ", message)


def measurement_of(line: str) -> str:
    """The measurement a line-protocol line names, unescaped."""
    match = _UNESCAPED_SPACE.search(line)
    series = line if match is None else line[: match.end() - 1]
    return re.sub(r"\\(.)", r"\1", _UNESCAPED_COMMA.split(series, 1)[0])


@dataclass(frozen=True)
class Refusal:
    """Points InfluxDB refused in one answer, and that answer."""

    status: int
    message: str  # shortened
    dropped: int | None
    conflict: Conflict | None
    points: Points

    @classmethod
    def of(cls, status: int, message: str, points: Points) -> Refusal:
        """Read what InfluxDB's whole message says before it is shortened."""
        conflict = parse_conflict(message)
        shown = shorten(without_quoted_lines(message))
        return cls(status, shown, dropped_count(message), conflict, points)


def shard_weeks(stamps_ns: Iterable[int]) -> set[int]:
    """The weeks (Monday to Monday, UTC, numbered from 1969-12-29) these epoch ns fall in."""
    return {(ns // 10**9 - _FIRST_MONDAY_S) // _WEEK_S for ns in stamps_ns}


def week_ranges(weeks: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive weeks joined: (first, last) pairs, oldest first."""
    ranges: list[tuple[int, int]] = []
    for week in sorted(set(weeks)):
        if ranges and ranges[-1][1] == week - 1:
            ranges[-1] = (ranges[-1][0], week)
        else:
            ranges.append((week, week))
    return ranges


def _week_start(week: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(_FIRST_MONDAY_S + week * _WEEK_S, dt.UTC)


def delete_command(bucket: str, org: str, measurement: str, first: int, last: int) -> str:
    """``influx delete`` of every point of a measurement in weeks ``first`` to ``last``.

    The range is whole weeks, not just the refused points' own times: InfluxDB forgets a
    field's type in a shard only once no series of the measurement is left in that shard.
    For the same reason the predicate names the measurement only: every series of it, this
    pipeline's or another's, keeps the type. ``--stop`` is inclusive, hence the last
    nanosecond before the next Monday.
    """
    start = _week_start(first).strftime("%Y-%m-%dT%H:%M:%SZ")
    stop = (_week_start(last + 1) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    predicate = '_measurement="' + measurement.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return (
        f"influx delete --bucket {shlex.quote(bucket)} --org {shlex.quote(org)} "
        f"--start {start} --stop {stop}.999999999Z --predicate {shlex.quote(predicate)}"
    )


def rename_map(stream: str, conflict: Conflict) -> str:
    """The ``stream_maps`` setting that writes the field under a new name from now on."""
    new_name = f"{conflict.field}_{conflict.sent}"
    return json.dumps({stream: {new_name: conflict.field, conflict.field: "__NULL__"}})


@dataclass
class RejectionLedger:
    """What a run set aside: counts, conflicts, and the weeks of each conflicting measurement."""

    count: int = 0
    conflicts: dict[tuple[str, str], Conflict] = field(default_factory=dict)
    weeks: dict[str, set[int]] = field(default_factory=dict)
    other: str | None = None  # the first answer that named no type conflict
    kept: int = 0  # stored points in those weeks, kept for after the delete

    def in_conflict(self, line: str, stamp_ns: int) -> bool:
        """Whether a point falls in a week a conflict's delete removes."""
        weeks = self.weeks.get(measurement_of(line))
        return weeks is not None and shard_weeks([stamp_ns]) <= weeks

    def add(self, refusals: Sequence[Refusal]) -> None:
        """Count the refused points of one batch."""
        for refusal in refusals:
            self.count += len(refusal.points)
            conflict = refusal.conflict
            if conflict is None:
                self.other = self.other or f"{refusal.status} {refusal.message}"
                continue
            self.conflicts.setdefault((conflict.measurement, conflict.field), conflict)
            self.weeks.setdefault(conflict.measurement, set()).update(
                shard_weeks(ts for line, ts in refusal.points if _in(line, conflict))
            )


def _in(line: str, conflict: Conflict) -> bool:
    return measurement_of(line) == conflict.measurement


MAX_RANGES = 3
"""Delete commands a message spells out; the rest are counted."""


def conflict_text(conflict: Conflict) -> str:
    """One conflict in words."""
    return (
        f'field "{conflict.field}" of measurement "{conflict.measurement}" is stored as '
        f"{conflict.stored} and was sent as {conflict.sent}"
    )


def delete_advice(bucket: str, org: str, weeks: dict[str, set[int]]) -> str:
    """The deletes that let InfluxDB take the conflicting points, and what they cost."""
    commands = [
        delete_command(bucket, org, measurement, first, last)
        for measurement, found in sorted(weeks.items())
        for first, last in week_ranges(found)
    ]
    text = "; ".join(commands[:MAX_RANGES])
    if len(commands) > MAX_RANGES:
        text += f"; and {len(commands) - MAX_RANGES} more week ranges like these"
    names = ", ".join(f'"{m}"' for m in sorted(weeks))
    return (
        f"{text} (InfluxDB keeps a field's type per weekly shard, so this deletes every point "
        f"of {names} stored in those weeks, all fields: write them again after)"
    )


def describe(  # noqa: PLR0913
    stream: str,
    answer: Refusal,
    refusals: Sequence[Refusal],
    sent: int,
    *,
    bucket: str,
    org: str,
) -> str:
    """The message of a batch InfluxDB refused points of: what, why, and how to go on.

    Args:
        stream: the stream's name.
        answer: InfluxDB's answer to the whole batch.
        refusals: the points it refuses, grouped by the answer that refused them.
        sent: how many points the batch had.
        bucket: the bucket, for the commands.
        org: the org, for the commands.
    """
    refused = sum(len(r.points) for r in refusals)
    line = shorten(render_lines(refusals[0].points[:1], "ns"))
    text = (
        f'InfluxDB rejected {refused} of {sent} points of stream "{stream}" as invalid '
        f"({answer.status} {answer.message}); first rejected line: {line}."
    )
    ledger = RejectionLedger()
    ledger.add(refusals)
    if not ledger.conflicts:
        return (
            f"{text} To go on, change what the stream sends (its `mappings`, or a stream map), "
            "or set `rejected_points_path` to set refused points aside in a file and go on"
        )
    conflict = next(iter(ledger.conflicts.values()))
    return (
        f"{text} The {conflict_text(conflict)}. To go on, either write the field under "
        f"another name with the setting `stream_maps` = {rename_map(stream, conflict)}; or "
        f"delete what InfluxDB holds in the conflicting range: "
        f"{delete_advice(bucket, org, ledger.weeks)}; or set `rejected_points_path` to set "
        "refused points aside in a file and go on"
    )
