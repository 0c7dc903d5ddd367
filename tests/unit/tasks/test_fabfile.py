"""`fab -l` lists the tasks with one-line help; usage errors say what is missing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.inventory import Inventory

ROOT = Path(__file__).resolve().parents[3]


def fab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fabric", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, check=False)


def test_fab_list_shows_every_task_with_help() -> None:
    out = fab("-l").stdout
    for name in ("deploy", "ca.create", "ca.sign-user", "ca.sign-hosts", "ca.revoke",
                 "ca.push-krl"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split()) > 2, line  # a name and its help


def test_fab_deploy_help_documents_the_flags() -> None:
    out = fab("-h", "deploy").stdout
    for flag in ("--env", "--hosts", "--role", "--check", "--inventory", "--identity"):
        assert flag in out


def test_fab_deploy_without_a_user_certificate_says_how_to_get_one(
        prod: Inventory, tmp_path: Path) -> None:
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(prod.doc))
    proc = fab("deploy", "--env", "prod", "--inventory", str(inv), "--identity",
               str(tmp_path / "nokey"), "--check")
    assert proc.returncode == 2
    assert "fab ca.sign-user" in proc.stderr
