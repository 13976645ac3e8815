"""Singer target for InfluxDB 2.x."""
