"""The on-host metrics scripts (onhost/metrics/) run as a directory on every host: their tests
import them the same way, by their directory on sys.path."""
from __future__ import annotations

import sys
from pathlib import Path

ONHOST = Path(__file__).resolve().parents[4] / "onhost" / "metrics"

if str(ONHOST) not in sys.path:
    sys.path.insert(0, str(ONHOST))
