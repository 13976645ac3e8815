"""Run the target: ``python -m target_influxdb``."""

from target_influxdb.target import main

main()
