"""PHP-FPM on the web hosts: one pool per site, running as the site's own user behind its own
socket that only nginx may open (R-GDPR-4), read from the effective configuration
(`php-fpmX.Y -tt` as root) and from the live socket and processes; expectations from the
inventory (the sites on the host and their PHP version)."""
from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.roles("web")

_POOLS: dict[str, dict[str, dict[str, str]]] = {}
NOTICE = re.compile(r"NOTICE:\s?(.*)$")


def sites_of(host_entry: dict[str, Any], inventory: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in inventory["sites"] if s["host"] == host_entry["name"]]


def php_version(host_entry: dict[str, Any], inventory: dict[str, Any]) -> str:
    versions = {str(s["php"]["version"]) for s in sites_of(host_entry, inventory)}
    assert len(versions) == 1, f"sites on {host_entry['name']} want PHP {sorted(versions)}"
    return versions.pop()


def parse_fpm_dump(text: str) -> dict[str, dict[str, str]]:
    """`php-fpm -tt` (one NOTICE line per setting, `[section]` headers) -> {section: {k: v}}."""
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for line in text.splitlines():
        m = NOTICE.search(line)
        if not m:
            continue
        body = m.group(1).strip()
        head = re.fullmatch(r"\[(.+)\]", body)
        if head:
            section = out.setdefault(head.group(1), {})
        elif section is not None and " = " in body:
            key, _, value = body.partition(" = ")
            section[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def pools(host: Any, host_entry: dict[str, Any], inventory: dict[str, Any]
          ) -> dict[str, dict[str, str]]:
    """Every pool of the effective configuration (the [global] section removed)."""
    name = host_entry["name"]
    if name not in _POOLS:
        done = host.run(f"php-fpm{php_version(host_entry, inventory)} -tt")
        assert done.rc == 0, done.stderr[-2000:]
        parsed = parse_fpm_dump(done.stderr + done.stdout)
        parsed.pop("global", None)
        _POOLS[name] = parsed
    return _POOLS[name]


def test_fpm_config_is_valid_and_service_running_enabled(host, host_entry, inventory):
    version = php_version(host_entry, inventory)
    done = host.run(f"php-fpm{version} -t")
    assert done.rc == 0, done.stderr
    service = host.service(f"php{version}-fpm")
    assert service.is_running and service.is_enabled


def test_fpm_only_the_sites_pools_exist(pools, host_entry, inventory):
    # Debian's `www` pool (PHP as www-data, the nginx user) is gone; no pool for another site.
    assert set(pools) == {s["name"] for s in sites_of(host_entry, inventory)}


def test_fpm_pool_runs_as_the_sites_user(pools, host_entry, inventory):
    for site in sites_of(host_entry, inventory):
        pool = pools[site["name"]]
        assert (pool.get("user"), pool.get("group")) == (site["name"], site["name"]), site


def test_fpm_pool_listens_on_its_own_socket_for_nginx_only(pools, host_entry, inventory):
    for site in sites_of(host_entry, inventory):
        pool = pools[site["name"]]
        assert pool.get("listen") == f"/run/php/{site['name']}.sock"
        assert (pool.get("listen.owner"), pool.get("listen.group"),
                pool.get("listen.mode")) == ("www-data", "www-data", "0660")
        # ACLs would replace the owner/group above (`-tt` prints unset values as "undefined").
        assert pool.get("listen.acl_users", "") in ("", "undefined")
        assert pool.get("listen.acl_groups", "") in ("", "undefined")


def test_fpm_socket_file_owner_and_mode(host, host_entry, inventory):
    for site in sites_of(host_entry, inventory):
        sock = host.file(f"/run/php/{site['name']}.sock")
        assert sock.is_socket, site["name"]
        assert (sock.user, sock.group, sock.mode) == ("www-data", "www-data", 0o660)


def test_fpm_workers_run_as_the_sites_user(host, host_entry, inventory):
    rows = host.check_output("ps -eo user:32=,args= | awk '/php-fpm: pool / && !/awk/ "
                             "{print $1, $NF}'").splitlines()
    got = {tuple(r.split()) for r in rows}
    assert got == {(s["name"], s["name"]) for s in sites_of(host_entry, inventory)}


def test_fpm_open_basedir_is_the_sites_own_tree(pools, host_entry, inventory):
    # Defence in depth (R-GDPR-4): PHP of a site opens nothing outside /srv/S and /etc/hosting/S.
    for site in sites_of(host_entry, inventory):
        value = pools[site["name"]].get("php_admin_value[open_basedir]", "")
        dirs = [d for d in value.split(":") if d]
        own = (f"/srv/{site['name']}/", f"/etc/hosting/{site['name']}/", "/usr/share/php/")
        assert dirs and all(d.startswith(own) for d in dirs), value


def admin_setting(pool: dict[str, str], name: str) -> str:
    """A php_admin_flag/php_admin_value (`-tt` prints flags as values: off -> 0)."""
    for kind in ("php_admin_value", "php_admin_flag"):
        if f"{kind}[{name}]" in pool:
            return pool[f"{kind}[{name}]"].lower()
    return ""


def test_fpm_pool_hides_errors_and_remote_includes(pools, host_entry, inventory):
    for site in sites_of(host_entry, inventory):
        pool = pools[site["name"]]
        assert admin_setting(pool, "display_errors") in ("off", "0")
        assert admin_setting(pool, "allow_url_include") in ("off", "0")
        assert pool.get("security.limit_extensions") == ".php"
