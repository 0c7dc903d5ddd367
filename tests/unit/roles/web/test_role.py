"""The web role through the deploy engine's own decisions (engine.decide): what a fresh host
gets, and that a host already in the desired state gets nothing."""
from __future__ import annotations

from engine.decide import decide
from engine.facts import CommandFact, HostFacts, PathFact
from engine.resources import File
from roles.web.role import web
from tests.unit.roles.converged import converged, role_ctx


def test_web_fresh_host_installs_everything_once(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    plan = decide(d.resources, d.handlers, HostFacts())
    installs = [a for a in plan.actions if a.key == "packages"]
    assert len(installs) == 1
    for pkg in ("nginx", "php8.4-fpm", "mariadb-server", "gocryptfs"):
        assert pkg in installs[0].summary
    # Debian's default site and www pool are removed by the apt run that installs them.
    assert installs[0].op["leftovers"] == ["/etc/nginx/sites-enabled/default",
                                           "/etc/php/8.4/fpm/pool.d/www.conf"]
    checks = [a.key for a in plan.actions if a.op["kind"] == "check"]
    assert checks == ["check:not-decommissioned-villeparisis",
                      "check:mariadb-baseline", "check:web-secrets-villeparisis",
                      "check:web-database-villeparisis", "check:web-private-villeparisis"]
    keys = [a.key for a in plan.actions]
    # The private files need their mount unit written and started first.
    assert keys.index("service:hosting-private-villeparisis.service") < keys.index(
        "check:web-private-villeparisis")
    ran = [h.name for h in plan.handlers]
    assert ran == ["web-daemon-reload", "restart-mariadb", "reload-php-fpm", "reload-nginx",
                   "restart-nginx"]


def test_web_converged_host_gets_no_action(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    plan = decide(d.resources, d.handlers, converged(d))
    assert plan.is_noop, [a.summary for a in plan.actions]


def test_web_nginx_and_pool_validated_on_host(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    files = {r.path: r for r in d.resources if isinstance(r, File)}
    assert files["/etc/nginx/nginx.conf"].validate == "/usr/sbin/nginx -t -q -c {}"
    assert files["/etc/php/8.4/fpm/pool.d/villeparisis.conf"].validate.startswith(
        "/usr/sbin/php-fpm8.4 -t")
    assert files["/etc/mysql/mariadb.conf.d/90-hosting.cnf"].mode == 0o640


def test_web_secrets_never_in_resources(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    paths = {r.path for r in d.resources if isinstance(r, File)}
    assert not {"/etc/hosting/villeparisis/db.cnf", "/etc/hosting/villeparisis/hash_salt",
                "/etc/hosting/villeparisis/private.pass"} & paths


def test_web_changed_pool_reloads_php_only(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    facts = converged(d)
    pool = "/etc/php/8.4/fpm/pool.d/villeparisis.conf"
    facts.paths[pool] = PathFact(True, "file", 0o644, "root", "root", "x", b"old")
    plan = decide(d.resources, d.handlers, facts)
    assert [a.key for a in plan.actions] == [f"file:{pool}"]
    assert [h.name for h in plan.handlers] == ["reload-php-fpm"]


def test_web_check_would_change_runs_its_fix_alone(prod):
    d = web(role_ctx(prod, "web-participation"))
    facts = converged(d)
    facts.commands["web-database-participation"] = CommandFact(3, "database missing\n")
    plan = decide(d.resources, d.handlers, facts)
    [action] = plan.actions
    assert action.key == "check:web-database-participation" and plan.handlers == ()
    assert "database" in action.op["apply"] and "--check" not in action.op["apply"]
    assert action.op["check"][-1] == "--check"


def test_web_role_on_proxy_host_is_empty(prod):
    assert web(role_ctx(prod, "proxy")).resources == ()


def test_web_nginx_listening_elsewhere_than_configured_restarts_it(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    facts = converged(d)
    facts.commands["nginx-listen"] = CommandFact(0, "0.0.0.0:80\n[::]:80\n")
    plan = decide(d.resources, d.handlers, facts)
    assert [h.name for h in plan.handlers] == ["restart-nginx"]
    assert [a.key for a in plan.actions] == ["probe:nginx-listen"]


def test_nginx_listen_expected_sockets_are_the_configs(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    expected = next(r for r in d.resources if isinstance(r, File)
                    and r.path == "/var/lib/hosting/nginx-listen")
    assert expected.content == "10.20.0.100:443\n127.0.0.1:80\n"


def test_decommission_guard_first_resource_of_the_web_role(prod):
    desired = web(role_ctx(prod, "web-villeparisis"))
    assert desired.resources[0].key == "check:not-decommissioned-villeparisis"


def test_decommission_guard_tombstone_present_deploy_fails_naming_it(prod, tmp_path):
    import subprocess

    from roles.web import layout
    from roles.web.role import decommission_guard

    guard = decommission_guard("villeparisis")
    script = guard.check[-1].replace(layout.TOMBSTONE_DIR, str(tmp_path))
    absent = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert absent.returncode == 0  # a host where the site was never decommissioned
    (tmp_path / "villeparisis.json").write_text('{"site": "villeparisis"}\n')
    present = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert present.returncode == 4 and "villeparisis was decommissioned" in present.stderr
    facts = HostFacts(commands={guard.name: CommandFact(4, "", present.stderr)})
    actions = decide([guard], (), facts).actions
    assert len(actions) == 1 and "villeparisis was decommissioned" in actions[0].summary


def test_decommission_guard_same_path_as_the_decommission_helper():
    from backup import decommission
    from roles.web import layout

    assert layout.TOMBSTONE_DIR == decommission.TOMBSTONE_DIR
