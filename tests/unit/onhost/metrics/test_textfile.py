"""onhost/metrics/textfile.py (issue 13): the exposition format (parsed back with the backup
side's parser, and `promtool check metrics`), the atomic write, the web helper's link."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import textfile

from backup.metrics import parse_text

METRICS = [("hosting_apt_security_updates_pending", "Pending.", [({}, 3)]),
           ("hosting_site_release_info", "Live release.",
            [({"site": "s", "release": "20261204-abc", "version": '11.1"x'}, 1)])]


def test_render_parse_back_equal() -> None:
    assert parse_text(textfile.render(METRICS)) == {
        ("hosting_apt_security_updates_pending", ()): 3.0,
        ("hosting_site_release_info", (("release", "20261204-abc"), ("site", "s"),
                                       ("version", '11.1\\"x'))): 1.0}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_render_passes_promtool_check_metrics() -> None:
    proc = subprocess.run(["promtool", "check", "metrics"], input=textfile.render(METRICS),
                          text=True, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_render_bad_label_name_raises() -> None:
    with pytest.raises(ValueError, match="__x"):
        textfile.render([("m", "h", [({"__x": "1"}, 1)])])


def test_write_replaces_atomically_no_temporary_left(tmp_path: Path, monkeypatch) -> None:
    path = str(tmp_path / "d" / "x.prom")
    textfile.write(path, "a 1\n")
    monkeypatch.setattr(textfile.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError):
        textfile.write(path, "a 2\n")
    assert Path(path).read_text() == "a 1\n"
    assert os.listdir(tmp_path / "d") == ["x.prom"]
    assert oct(os.stat(tmp_path / "d").st_mode & 0o777) == "0o755"


def test_write_safely_unwritable_dir_returns_warning_not_raise(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(textfile.ENV_DIR, str(blocker / "sub"))
    assert "metrics not written" in textfile.write_safely("x.prom", METRICS)


def test_web_helper_link_is_this_module() -> None:
    link = Path(__file__).resolve().parents[4] / "onhost" / "web" / "textfile.py"
    assert link.read_text() == Path(textfile.__file__).read_text()
