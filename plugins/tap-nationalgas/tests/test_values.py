"""The API's loosely typed values turned into clean record values."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_nationalgas import values

UTC = dt.UTC


@pytest.mark.parametrize(
    ("moment", "gas_day"),
    [
        ("2026-01-15T04:59:00+00:00", "2026-01-14"),  # GMT: the gas day starts at 05:00 UTC
        ("2026-01-15T05:00:00+00:00", "2026-01-15"),
        ("2026-07-15T03:59:00+00:00", "2026-07-14"),  # BST: at 04:00 UTC
        ("2026-07-15T04:00:00+00:00", "2026-07-15"),
        ("2026-07-15T05:00:00+01:00", "2026-07-15"),
    ],
)
def test_gas_day_runs_05_00_to_05_00_uk_time(moment, gas_day):
    assert values.gas_day(dt.datetime.fromisoformat(moment)).isoformat() == gas_day


def test_values_are_cleaned():
    assert values.number(" 39.41 ") == values.number(39.41) == values.number("39.41")
    assert values.number("") is None
    assert values.number(None) is None
    assert values.text("  ") is None
    assert values.instant("2026-08-11T07:59:24+01:00") == dt.datetime(
        2026, 8, 11, 6, 59, 24, tzinfo=UTC
    )
    assert values.instant("2026-08-11T07:59:24") == dt.datetime(2026, 8, 11, 6, 59, 24, tzinfo=UTC)
    with pytest.raises(values.BadValueError):
        values.number("n/a")
    with pytest.raises(values.BadValueError):
        values.number("NaN")


def test_settings_and_state_times_without_an_offset_are_utc():
    assert values.instant("2026-08-11T07:59:24", dt.UTC) == dt.datetime(
        2026, 8, 11, 7, 59, 24, tzinfo=UTC
    )
    moment = dt.datetime(2026, 8, 11, 7, 59, 24)
    assert values.instant(moment, dt.UTC) == dt.datetime(2026, 8, 11, 7, 59, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("BACTON", "bacton"),
        ("Bacton ", "bacton"),
        ("MILFORD HAVEN - DRAGON", "milford_haven_dragon"),
        ("BACTON IPs Terminal", "bacton_ips_terminal"),
        ("Supply from terminals", "supply_from_terminals"),
        ("---", "_"),
    ],
)
def test_names_become_stable_keys(name, key):
    assert values.key(name) == key


@pytest.mark.parametrize(
    ("day", "start"),
    [("2026-01-15", "2026-01-15T05:00:00+00:00"), ("2026-07-15", "2026-07-15T04:00:00+00:00")],
)
def test_a_gas_day_starts_at_05_00_uk_time(day, start):
    assert values.gas_day_start(dt.date.fromisoformat(day)) == dt.datetime.fromisoformat(start)
