"""The admin side's one way to run a command (localcmd, issue 12): real commands, no mocks."""
from __future__ import annotations

import sys

import pytest

from localcmd import CommandError, ok, run

PY = sys.executable


def test_run_exit_nonzero_raises_naming_command_code_and_stderr():
    with pytest.raises(CommandError) as err:
        run([PY, "-c", "import sys; sys.stderr.write('disk full\\n'); sys.exit(3)"])
    assert err.value.returncode == 3 and err.value.stderr == "disk full"
    assert str(err.value).startswith(PY) and "exited 3: disk full" in str(err.value)


def test_run_long_stderr_error_keeps_its_tail():
    script = "import sys; sys.stderr.write('x' * 5000 + 'THE REASON'); sys.exit(1)"
    with pytest.raises(CommandError) as err:
        run([PY, "-c", script])
    assert err.value.stderr.endswith("THE REASON") and len(err.value.stderr) == 1500


def test_run_input_secret_never_in_the_error():
    with pytest.raises(CommandError) as err:
        run([PY, "-c", "import sys; sys.stdin.read(); sys.exit(1)"], input="s3cret-passphrase")
    assert "s3cret" not in str(err.value) and "s3cret" not in repr(err.value.__dict__)


def test_run_input_given_reaches_stdin():
    assert run([PY, "-c", "import sys; print(sys.stdin.read()[::-1])"], input="abc").stdout \
        == "cba\n"


def test_run_without_input_stdin_is_empty_not_the_terminal():
    assert run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], timeout=10).stdout \
        == "''\n"


def test_run_missing_program_raises_not_installed():
    with pytest.raises(CommandError,
                       match=r"no-such-tool-h3 --version failed to run: not installed"):
        run(["no-such-tool-h3", "--version"])


def test_run_missing_cwd_raises_naming_the_directory(tmp_path):
    with pytest.raises(CommandError, match="no directory .*/gone"):
        run([PY, "-V"], cwd=tmp_path / "gone")


def test_run_timeout_raises_with_returncode_none():
    with pytest.raises(CommandError, match="timed out after 0.5 s") as err:
        run([PY, "-c", "import time; time.sleep(10)"], timeout=0.5)
    assert err.value.returncode is None


def test_run_check_false_nonzero_returns_the_process():
    proc = run([PY, "-c", "import sys; sys.exit(4)"], check=False)
    assert proc.returncode == 4


def test_run_env_added_to_environment_in_c_locale(monkeypatch):
    monkeypatch.setenv("H3_KEPT", "kept")
    out = run([PY, "-c", "import os; print(os.environ['H3_KEPT'], os.environ['H3_ADDED'], "
                         "os.environ['LC_ALL'])"], env={"H3_ADDED": "added"}).stdout
    assert out.split() == ["kept", "added", "C"]


def test_run_text_false_returns_bytes():
    out = run([PY, "-c", "import sys; sys.stdout.buffer.write(bytes([0, 255]))"],
              text=False).stdout
    assert out == b"\x00\xff"


def test_ok_exit_codes_true_only_for_zero():
    assert ok([PY, "-c", "pass"]) and not ok([PY, "-c", "raise SystemExit(1)"])
