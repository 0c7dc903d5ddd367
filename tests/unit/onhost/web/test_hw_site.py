"""The release tree's housekeeping (hw_site): what prune keeps."""
from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import hw_release
import pytest

from .release_helpers import LocalSite, build, make_site, upload


@pytest.fixture
def site(tmp_path: Path) -> LocalSite:
    return make_site(tmp_path)


def test_prune_keeps_three_and_their_archives(site, tmp_path):
    shas = []
    for day in range(1, 6):
        b = build(tmp_path, f"v{day}")
        shas.append(b.sha256)
        hw_release.deploy(site, upload(tmp_path, b), b.sha256, b.source,
                          now=datetime(2026, 1, day, tzinfo=UTC))
    assert sorted(site.existing().values()) == sorted(shas[2:])
    assert sorted(os.listdir(site.incoming)) == sorted(f"{s}.tar.gz" for s in shas[2:])
