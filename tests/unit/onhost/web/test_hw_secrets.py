from __future__ import annotations

import grp
import os
import pwd

import hw_secrets
import pytest
from hw_util import read_option_file


@pytest.fixture
def me(monkeypatch):
    """Run as whoever runs the tests: the site user and root both become that user."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    real = hw_secrets.wanted

    def wanted(site, etc, database):
        return [(p, user, group, m, make) for p, _o, _g, m, make in real(site, etc, database)]
    monkeypatch.setattr(hw_secrets, "wanted", wanted)
    return user


def test_ensure_creates_each_secret_0400(me, tmp_path):
    done = hw_secrets.ensure("site1", str(tmp_path), "db1")
    assert len(done) == 3
    for name in ("db.cnf", "hash_salt", "private.pass"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o400
    creds = read_option_file(tmp_path / "db.cnf")
    assert creds["user"] == "site1" and len(creds["password"]) >= 40


def test_ensure_second_run_changes_nothing_and_keeps_password(me, tmp_path):
    hw_secrets.ensure("site1", str(tmp_path), "db1")
    before = (tmp_path / "db.cnf").read_text()
    assert hw_secrets.ensure("site1", str(tmp_path), "db1") == []
    assert (tmp_path / "db.cnf").read_text() == before
    assert hw_secrets.check("site1", str(tmp_path), "db1") == []


def test_ensure_fixes_mode_without_rotating(me, tmp_path):
    hw_secrets.ensure("site1", str(tmp_path), "db1")
    before = (tmp_path / "hash_salt").read_text()
    os.chmod(tmp_path / "hash_salt", 0o644)
    assert "has mode 0644" in hw_secrets.check("site1", str(tmp_path), "db1")[0]
    assert hw_secrets.ensure("site1", str(tmp_path), "db1") == [
        f"fixed owner/mode of {tmp_path}/hash_salt"]
    assert (tmp_path / "hash_salt").read_text() == before


def test_db_cnf_database_only_for_the_mysql_client():
    text = hw_secrets.db_cnf("u", "d", "p")
    client, mysql = text.split("[client]")[1].split("[mysql]")
    assert "database" not in client and "database = d" in mysql
