"""The web host's helper (onhost/web/) imports its siblings as top-level modules (it runs as a
directory on the host): its tests import them the same way."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
ONHOST = ROOT / "onhost" / "web"

if str(ONHOST) not in sys.path:
    sys.path.insert(0, str(ONHOST))


@pytest.fixture(autouse=True)
def textfile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Node exporter's textfile directory of the helper's release metrics (hw_metrics): the
    test's own, never this machine's /var/lib/prometheus/node-exporter."""
    path = tmp_path / "textfile"
    monkeypatch.setenv("HOSTING_TEXTFILE_DIR", str(path))
    return path
