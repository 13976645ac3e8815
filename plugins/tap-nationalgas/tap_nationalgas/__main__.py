"""Run the tap: ``python -m tap_nationalgas``."""

from tap_nationalgas.tap import main

main()
