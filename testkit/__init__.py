"""Test helpers shared by every test suite: real InfluxDB engines and the fake National Gas API."""
