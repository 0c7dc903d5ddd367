"""onhost/web/hw_metrics.py (issue 13): the live release and its version as metrics, after
a release or rollback, whatever its result; the fixture's RELEASE file, Drupal's VERSION."""
from __future__ import annotations

import os
from pathlib import Path

import hw_metrics

from backup.metrics import parse_text

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "site"


def _site(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "srv"
    release = root / "releases" / "20261204T200000Z-abcdef012345"
    for rel, text in files.items():
        (release / rel).parent.mkdir(parents=True, exist_ok=True)
        (release / rel).write_text(text)
    os.symlink("releases/20261204T200000Z-abcdef012345", root / "current")
    return root


def test_release_version_fixture_release_file() -> None:
    assert hw_metrics.release_version(str(FIXTURE)) == "fixture-1"


def test_release_version_drupal_core_constant(tmp_path: Path) -> None:
    root = _site(tmp_path, {"web/core/lib/Drupal.php":
                            "<?php\nclass Drupal {\n  const VERSION = '11.2.5';\n}\n"})
    assert hw_metrics.release_version(str(root / "current")) == "11.2.5"


def test_release_version_nothing_readable_unknown(tmp_path: Path) -> None:
    assert hw_metrics.release_version(str(tmp_path)) == "unknown"


def test_write_release_live_release_info_and_failed_result(tmp_path: Path,
                                                           textfile_dir: Path) -> None:
    root = _site(tmp_path, {"RELEASE": "fixture-2\n"})
    assert hw_metrics.write_release("demo", str(root), ok=False) is None
    s = parse_text((textfile_dir / "hosting_site_demo.prom").read_text())
    assert s[("hosting_site_release_info", (("release", "20261204T200000Z-abcdef012345"),
                                            ("site", "demo"), ("version", "fixture-2")))] == 1
    assert s[("hosting_site_release_last_success", (("site", "demo"),))] == 0


def test_write_release_no_current_link_result_only(tmp_path: Path, textfile_dir: Path) -> None:
    assert hw_metrics.write_release("demo", str(tmp_path), ok=True) is None
    s = parse_text((textfile_dir / "hosting_site_demo.prom").read_text())
    assert [k[0] for k in s] == ["hosting_site_release_last_success",
                                 "hosting_site_release_last_timestamp_seconds"]
