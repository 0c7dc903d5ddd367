"""The incident receiver (onhost/incidents/) runs as a script on ops: its tests import it the
same way, by its directory on sys.path."""
from __future__ import annotations

import sys
from pathlib import Path

ONHOST = Path(__file__).resolve().parents[4] / "onhost" / "incidents"

if str(ONHOST) not in sys.path:
    sys.path.insert(0, str(ONHOST))
