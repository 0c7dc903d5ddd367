from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def _check(*files: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model", "check", *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_main_check_real_stacks_exit_zero_with_one_line_each():
    done = _check("Pulumi.prod.yaml", "Pulumi.preprod.yaml")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(": ok: " in line for line in lines)


def test_main_check_bad_stack_exit_one_with_one_line_per_problem(tmp_path):
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    bad = tmp_path / "Pulumi.prod.yaml"
    bad.write_text(text.replace("region: GRA11", "region: DE1")
                   .replace("networks: [203.0.113.8/29]", "networks: [0.0.0.0/0]"))
    done = _check(str(bad))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}: ovh.region: ")
    assert lines[1].startswith(f"{bad}: admin.networks[0]: ")


def test_main_check_missing_file_exit_one():
    done = _check("Pulumi.nowhere.yaml")
    assert done.returncode == 1 and "cannot read" in done.stderr


def test_main_schema_table_prints_markdown_table_exit_zero():
    done = subprocess.run([sys.executable, "-m", "model", "schema-table"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "| key | type | rule |"
    assert any(line.startswith("| `sites[i].host_number` |") for line in lines)
