"""The web host's helper (onhost/web/) imports its siblings as top-level modules (it runs as a
directory on the host): its tests import them the same way."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
ONHOST = ROOT / "onhost" / "web"

if str(ONHOST) not in sys.path:
    sys.path.insert(0, str(ONHOST))
