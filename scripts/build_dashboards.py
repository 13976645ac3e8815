"""Write the GB gas dashboards into ``grafana/dashboards``: ``data_imports.dashboards``'s command.

``.venv/bin/python scripts/build_dashboards.py`` after changing a panel; ``--check`` exits 1 and
names the files that differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's own package

from data_imports.dashboards import main

if __name__ == "__main__":
    sys.exit(main())
