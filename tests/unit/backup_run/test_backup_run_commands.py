"""restic command lines: passwords only from files, never in argv or the environment."""

from __future__ import annotations

import shlex
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from backup.config import Database, parse
from backup.restic import Repo, Restic, check_no_secret_in_argv, restic_time_arg

PARIS = ZoneInfo("Europe/Paris")
LOCAL = Repo("local", "/var/backups/hosting/demo/restic", "/etc/hosting/backup/demo.password")
A = Repo("a", "rclone:demo", "/etc/hosting/backup/demo.password", ssh_alias="backup-a",
         ssh_config="/etc/hosting/backup/demo.ssh_config")
WHEN = datetime(2025, 3, 30, 3, 15, tzinfo=PARIS)
SECRET = "s3cret-password-value"


def all_argvs(restic: Restic) -> list[list[str]]:
    db = Database("demo", "/etc/hosting/demo/db.cnf")
    return [
        restic.snapshots_argv(LOCAL),
        restic.snapshots_argv(A),
        restic.init_argv(LOCAL),
        restic.init_argv(A, LOCAL),
        restic.init_argv(LOCAL, A),
        restic.backup_command_argv(LOCAL, db.dump_command(), "demo.sql", ["weekly", "db"],
                                   "web-demo", WHEN),
        restic.backup_paths_argv(LOCAL, ["/srv/demo"], ["/srv/demo/log"], ["files"],
                                 "web-demo", WHEN),
        restic.copy_argv(LOCAL, A, ["abc"]),
        restic.forget_argv(A, ["abc", "def"]),
        restic.prune_argv(LOCAL),
        restic.check_argv(LOCAL, "3/28"),
        restic.dump_argv(A, "abc", "/demo.sql"),
        restic.restore_argv(A, "abc", "/", ["/srv/demo"], delete=True),
        restic.unlock_argv(LOCAL),
    ]


def test_every_command_reads_the_password_from_a_file() -> None:
    for argv in all_argvs(Restic(binary="restic")):
        assert "--password-file" in argv, argv
        assert argv[argv.index("--password-file") + 1] == "/etc/hosting/backup/demo.password"
        assert not any(a == "--password" or a.startswith("--password=") for a in argv)
        check_no_secret_in_argv(argv)  # the guard restic.run applies accepts them


def test_copies_and_inits_name_the_source_password_file_too() -> None:
    restic = Restic()
    for argv in (restic.copy_argv(LOCAL, A, ["abc"]), restic.init_argv(A, LOCAL)):
        assert argv[argv.index("--from-password-file") + 1] == LOCAL.password_file
        assert argv[argv.index("--from-repo") + 1] == LOCAL.location


@pytest.mark.parametrize("argv", [
    ["restic", "--password", SECRET, "snapshots"],
    ["restic", f"--password={SECRET}"],
    ["mariadb-dump", f"-p{SECRET}", "demo"],
    ["mariadb-dump", "-p", SECRET],
])
def test_the_guard_refuses_a_secret_on_the_command_line(argv: list[str]) -> None:
    with pytest.raises(ValueError, match="refusing"):
        check_no_secret_in_argv(argv)


def test_restic_gets_a_minimal_environment_without_passwords(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTIC_PASSWORD", SECRET)
    monkeypatch.setenv("RESTIC_REPOSITORY", "/elsewhere")
    monkeypatch.setenv("MYSQL_PWD", SECRET)
    env = Restic().environment()
    assert set(env) == {"PATH", "HOME", "TZ", "LC_ALL"}
    assert SECRET not in env.values()
    assert env["TZ"] == "UTC"
    with pytest.raises(ValueError, match="password file"):
        Restic(extra_env={"RESTIC_PASSWORD": SECRET}).environment()


def test_off_site_repositories_go_through_ssh_with_the_site_config() -> None:
    argv = Restic().snapshots_argv(A)
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "--option"]
    assert "rclone.program=ssh" in options
    args = next(o for o in options if o.startswith("rclone.args="))
    assert shlex.split(args.split("=", 1)[1]) == ["-F", "/etc/hosting/backup/demo.ssh_config",
                                                  "backup-a"]
    assert argv[argv.index("--repo") + 1] == "rclone:demo"
    assert "--no-lock" in argv  # a listing never waits for the storage server's prune


def test_dump_command_reads_credentials_from_the_option_file_first() -> None:
    cmd = Database("demo", "/etc/hosting/demo/db.cnf").dump_command()
    assert cmd[0] == "mariadb-dump"
    assert cmd[1] == "--defaults-extra-file=/etc/hosting/demo/db.cnf"  # must be first
    assert "--single-transaction" in cmd and "--skip-dump-date" in cmd
    assert cmd[-1] == "demo"
    argv = Restic().backup_command_argv(LOCAL, cmd, "demo.sql", ["db"], "web-demo", WHEN)
    assert argv[argv.index("--stdin-filename") + 1] == "demo.sql"
    assert argv.index("--stdin-from-command") < argv.index("--") < argv.index("mariadb-dump")


def test_backup_time_is_given_in_utc() -> None:
    # 03:15 in Paris on the day DST starts is 01:15 UTC; restic runs with TZ=UTC.
    assert restic_time_arg(WHEN) == "2025-03-30 01:15:00"
    with pytest.raises(ValueError, match="naive"):
        restic_time_arg(datetime(2025, 3, 30, 3, 15))


def test_tags_host_and_excludes_reach_restic() -> None:
    argv = Restic().backup_paths_argv(LOCAL, ["/srv/demo", "/etc/nginx"], ["/srv/demo/log"],
                                      ["weekly", "monthly", "files"], "web-demo", WHEN)
    tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"]
    assert tags == ["weekly", "monthly", "files"]
    assert argv[argv.index("--host") + 1] == "web-demo"
    assert argv[argv.index("--exclude") + 1] == "/srv/demo/log"
    assert argv[-2:] == ["/srv/demo", "/etc/nginx"]
    with pytest.raises(ValueError, match="tag"):
        Restic().backup_paths_argv(LOCAL, ["/srv"], [], ["a,b"], "web-demo", WHEN)


def test_dangerous_calls_are_refused() -> None:
    restic = Restic()
    with pytest.raises(ValueError, match="every snapshot"):
        restic.copy_argv(LOCAL, A, [])
    with pytest.raises(ValueError, match="ids"):
        restic.forget_argv(LOCAL, [])
    with pytest.raises(ValueError, match="local repository only"):
        restic.copy_argv(A, LOCAL, ["abc"])


def test_forget_prunes_in_the_same_command() -> None:
    argv = Restic().forget_argv(LOCAL, ["abc"])
    assert argv[argv.index("forget") + 1] == "--prune"
    assert argv[-2:] == ["--", "abc"]


BASE = {
    "site": "demo", "policy": {"timezone": "Europe/Paris", "weekly_day": "sunday"},
    "password_file": "/p", "paths": ["/srv/demo"], "excludes": [],
    "database": {"name": "demo", "option_file": "/etc/db.cnf"},
    "state_dir": "/var/lib/x", "lock_file": "/run/x.lock",
    "repositories": {"local": {"location": "/r"},
                     "a": {"location": "rclone:demo", "ssh_alias": "backup-a"},
                     "b": {"location": "rclone:demo", "ssh_alias": "backup-b"}},
}


def test_config_parses_and_maps_the_weekday() -> None:
    cfg = parse(BASE)
    assert cfg.policy.weekly_day == 6 and cfg.host == "web-demo"
    assert cfg.a.remote and not cfg.local.remote


@pytest.mark.parametrize(("change", "message"), [
    ({"paths": ["srv/demo"]}, "not an absolute path"),
    ({"policy": {"weekly_day": "sundy"}}, "weekly_day"),
    ({"repositories": {**BASE["repositories"], "a": {"location": "/mnt/a"}}},
     "only over SSH"),
    ({"database": {"name": "demo"}}, "option_file"),
])
def test_config_errors_name_the_field(change: dict, message: str) -> None:
    from backup.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse({**BASE, **change})


def test_backup_package_imports_only_the_standard_library() -> None:
    """It runs on the hosts with Debian's python3 and nothing installed with pip."""
    import ast
    import sys
    from pathlib import Path

    package = Path(__file__).resolve().parents[3] / "backup"
    for source in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ("backup", "__future__"), (
                    f"{source.name} imports {name}")
