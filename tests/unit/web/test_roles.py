"""The web and proxy roles through the deploy engine's own decisions (engine.decide):
what a fresh host gets, and that a host already in the desired state gets nothing."""
from __future__ import annotations

import hashlib
import shutil

import pytest

from engine.decide import decide
from engine.facts import CommandFact, HostFacts, PathFact, SystemFacts, UnitFact, UserFact
from engine.inventory import Inventory
from engine.resources import Absent, Directory, File, Packages, Probe, Service, Sysctl, User
from engine.role import HostContext
from roles.proxy.role import proxy
from roles.web.role import web


def _ctx(doc, host):
    inv = Inventory.from_doc(doc)
    return HostContext(inv, inv.host(host), SystemFacts(container="systemd-nspawn"))


def converged(desired) -> HostFacts:
    """Facts of a host on which every resource already holds."""
    paths, packages, units, users, commands = {}, {}, {}, {}, {}
    for r in desired.resources:
        if isinstance(r, File):
            paths[r.path] = PathFact(True, "file", r.mode, r.owner, r.group,
                                     hashlib.sha256(r.data).hexdigest(), r.data)
        elif isinstance(r, Directory):
            paths[r.path] = PathFact(True, "dir", r.mode, r.owner, r.group)
        elif isinstance(r, Absent):
            paths[r.path] = PathFact()
        elif isinstance(r, Packages):
            packages.update({n: "1" for n in r.names})
        elif isinstance(r, Service):
            units[r.unit] = UnitFact("loaded", "enabled", "active")
        elif isinstance(r, User):
            old = users.get(r.name)
            groups = tuple(sorted(set(r.groups) | set(old.groups if old else ())))
            users[r.name] = UserFact(True, r.home, r.shell, groups)
        elif isinstance(r, Probe):
            expected = next(f for f in desired.resources
                            if isinstance(f, File) and f.path == r.expect_from)
            commands[r.name] = CommandFact(0, expected.data.decode())
        elif isinstance(r, Sysctl):
            pass
    return HostFacts(SystemFacts(container="systemd-nspawn"), paths, packages, units, {}, users,
                     commands)


@pytest.fixture
def tls_dir(tmp_path, monkeypatch, test_cert):
    shutil.copy(test_cert[0], tmp_path / "fullchain.pem")
    shutil.copy(test_cert[1], tmp_path / "privkey.pem")
    monkeypatch.setenv("HOSTING_TLS_DIR", str(tmp_path))
    return tmp_path


def test_web_fresh_host_installs_everything_once(prod):
    d = web(_ctx(prod, "web-villeparisis"))
    plan = decide(d.resources, d.handlers, HostFacts())
    installs = [a for a in plan.actions if a.key == "packages"]
    assert len(installs) == 1
    for pkg in ("nginx", "php8.4-fpm", "mariadb-server", "gocryptfs"):
        assert pkg in installs[0].summary
    ran = [h.name for h in plan.handlers]
    assert ran[:3] == ["web-daemon-reload", "restart-mariadb", "mariadb-baseline"]
    assert ran.index("web-secrets-villeparisis") < ran.index("web-database-villeparisis")
    assert ran[-4:] == ["web-tidy", "reload-php-fpm", "reload-nginx", "restart-nginx"]


def test_web_converged_host_gets_no_action(prod):
    d = web(_ctx(prod, "web-villeparisis"))
    plan = decide(d.resources, d.handlers, converged(d))
    assert plan.is_noop, [a.summary for a in plan.actions]


def test_web_nginx_and_pool_validated_on_host(prod):
    d = web(_ctx(prod, "web-villeparisis"))
    files = {r.path: r for r in d.resources if isinstance(r, File)}
    assert files["/etc/nginx/nginx.conf"].validate == "/usr/sbin/nginx -t -q -c {}"
    assert files["/etc/php/8.4/fpm/pool.d/villeparisis.conf"].validate.startswith(
        "/usr/sbin/php-fpm8.4 -t")
    assert files["/etc/mysql/mariadb.conf.d/90-hosting.cnf"].mode == 0o640


def test_web_secrets_never_in_resources(prod):
    d = web(_ctx(prod, "web-villeparisis"))
    paths = {r.path for r in d.resources if isinstance(r, File)}
    assert not {"/etc/hosting/villeparisis/db.cnf", "/etc/hosting/villeparisis/hash_salt",
                "/etc/hosting/villeparisis/private.pass"} & paths


def test_web_changed_pool_reloads_php_only(prod):
    d = web(_ctx(prod, "web-villeparisis"))
    facts = converged(d)
    pool = "/etc/php/8.4/fpm/pool.d/villeparisis.conf"
    facts.paths[pool] = PathFact(True, "file", 0o644, "root", "root", "x", b"old")
    plan = decide(d.resources, d.handlers, facts)
    assert [a.key for a in plan.actions] == [f"file:{pool}"]
    assert [h.name for h in plan.handlers] == ["web-tidy", "reload-php-fpm"]


def test_web_probe_failure_runs_its_fix(prod):
    d = web(_ctx(prod, "web-participation"))
    facts = converged(d)
    facts.commands["web-database-participation"] = CommandFact(0, "database missing\n")
    plan = decide(d.resources, d.handlers, facts)
    assert [h.name for h in plan.handlers] == ["web-database-participation"]


def test_web_role_on_proxy_host_is_empty(prod):
    assert web(_ctx(prod, "proxy")).resources == ()


def test_proxy_without_tls_source_leaves_certificate_alone(prod, monkeypatch):
    monkeypatch.delenv("HOSTING_TLS_DIR", raising=False)
    d = proxy(_ctx(prod, "proxy"))
    paths = {getattr(r, "path", "") for r in d.resources}
    assert "/etc/ssl/hosting/wildcard.villeparisis.fr.key" not in paths


def test_proxy_tls_source_installs_key_then_certificate(prod, tls_dir):
    d = proxy(_ctx(prod, "proxy"))
    files = [r for r in d.resources if isinstance(r, File)]
    paths = [f.path for f in files]
    key = paths.index("/etc/ssl/hosting/wildcard.villeparisis.fr.key")
    assert key < paths.index("/etc/ssl/hosting/wildcard.villeparisis.fr.pem") < paths.index(
        "/etc/nginx/nginx.conf")
    assert files[key].mode == 0o600 and files[key].sensitive


def test_proxy_tls_source_not_covering_sites_fails(preprod, tls_dir):
    with pytest.raises(ValueError, match="does not cover www.preprod.villeparisis.fr"):
        proxy(_ctx(preprod, "proxy"))


def test_proxy_converged_host_gets_no_action(prod, tls_dir):
    d = proxy(_ctx(prod, "proxy"))
    assert decide(d.resources, d.handlers, converged(d)).is_noop


@pytest.mark.parametrize("role,host", [(web, "web-villeparisis"), (proxy, "proxy")])
def test_nginx_listening_elsewhere_than_configured_restarts_it(prod, tls_dir, role, host):
    d = role(_ctx(prod, host))
    facts = converged(d)
    facts.commands["nginx-listen"] = CommandFact(0, "0.0.0.0:80\n[::]:80\n")
    plan = decide(d.resources, d.handlers, facts)
    assert [h.name for h in plan.handlers] == ["restart-nginx"]
    assert [a.key for a in plan.actions] == ["probe:nginx-listen"]


def test_nginx_listen_expected_sockets_are_the_configs(prod):
    d = web(_ctx(prod, "web-villeparisis"))
    expected = next(r for r in d.resources if isinstance(r, File)
                    and r.path == "/var/lib/hosting/nginx-listen")
    assert expected.content == "10.20.0.100:80\n"
