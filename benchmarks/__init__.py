"""Benchmarks of the plugins against real engines and the local fake API."""
