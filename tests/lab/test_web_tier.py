"""The web tier in the lab, after `fab deploy` + the fixture site's release (test_web_support):
both sites over HTTPS through the proxy on their own IPs, blocked paths, private files,
isolation between sites, MariaDB's baseline, the TLS grade (R-HOST-1, R-HOST-2, R-GDPR-1,
R-GDPR-2, R-GDPR-4, R-MNT-3)."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.testing import LabSession, Probe

from .test_web_support import REPO, WebTier, deploy, probe_offset, web_tier

sys.path.insert(0, str(REPO / "onhost" / "web"))  # the host helper's own imports
from hw_db import BASELINE_QUERIES  # noqa: E402

pytestmark = pytest.mark.lab
SITES = ["villeparisis", "participation"]


@pytest.fixture
def tier(lab: LabSession) -> WebTier:
    return web_tier(lab)


def _json(body: str) -> dict:
    return json.loads(body)


# ---- serving ----------------------------------------------------------------------------------

@pytest.mark.parametrize("site", SITES)
def test_site_answers_200_over_https_with_content_from_its_own_database(tier, site):
    status, body, head = tier.curl(site, "/")
    assert status == 200, body
    page = _json(body)
    assert page["site"] == site and page["database"] == tier.site(site)["database"]
    assert page["content"] == f"content of {site} from its own database"
    assert head.startswith("http/2 ")


@pytest.mark.parametrize("site", SITES)
def test_alias_and_http_redirect_to_https(tier, site):
    for name in (tier.site(site)["domain"], *tier.site(site)["aliases"]):
        status, _body, head = tier.curl(site, "/a/b?c=1", scheme="http", name=name)
        assert status == 301 and f"location: https://{name}/a/b?c=1" in head


def test_acme_challenge_path_is_not_redirected(tier):
    status, _body, _head = tier.curl("villeparisis", "/.well-known/acme-challenge/nothing",
                                     scheme="http")
    assert status == 404


@pytest.mark.parametrize("site,other", [("villeparisis", "participation"),
                                        ("participation", "villeparisis")])
def test_site_ip_does_not_serve_the_other_sites_domain(tier, site, other):
    ip = tier.site(site)["public_ip"]
    status, err, _ = tier.curl(other, "/", ip=ip)
    assert status == 0 and "unrecognized name" in err  # TLS: no certificate, no page
    status, err, _ = tier.curl(other, "/", ip=ip, scheme="http")
    assert status == 0 and "Empty reply" in err  # HTTP: connection closed (444)


def test_security_headers_and_no_version_disclosure(tier):
    _status, _body, head = tier.curl("villeparisis", "/")
    assert "strict-transport-security: max-age=63072000" in head
    assert "x-content-type-options: nosniff" in head
    assert "x-frame-options: sameorigin" in head
    # the site's browser policies (sites[].headers, here the model's defaults; issue 17)
    assert "content-security-policy: default-src 'self';" in head
    assert "object-src 'none'" in head and "frame-ancestors 'self'" in head
    assert "permissions-policy: accelerometer=(), autoplay=(), camera=()" in head
    assert "server: nginx\n" in head
    assert "x-powered-by" not in head and "x-robots-tag" not in head  # prod: indexable


def test_static_assets_compressed_by_the_proxy(tier):
    _s, _b, head = tier.curl("villeparisis", "/whoami", args=("--compressed",))
    assert "content-encoding: gzip" in head


@pytest.mark.parametrize("site", SITES)
def test_php_runs_as_site_user_sees_real_client_ip_and_https(tier, site):
    who = _json(tier.curl(site, "/whoami")[1])
    machine = tier.lab.inventory["admin_networks"][0].split("/")[0]
    assert who["user"] == site
    assert who["remote_addr"] == machine  # from X-Forwarded-For, trusted from the proxy only
    assert who["https"] == "on" and who["opcache"] is True
    assert who["script_filename"].startswith(f"/srv/{site}/releases/")
    php = tier.site(site)["php"]
    assert who["upload_max_filesize"] == who["post_max_size"] == f"{php['upload_max_mb']}M"


def test_request_body_over_the_upload_limit_is_refused_at_the_proxy(tier, tmp_path):
    limit = tier.site("participation")["php"]["upload_max_mb"]
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate((limit + 1) * 1024 * 1024)
    status, _b, _h = tier.curl("participation", "/", args=("--data-binary", f"@{big}"))
    assert status == 413


# ---- blocked paths, private files, PHP in files ------------------------------------------------

BLOCKED = ["/.htaccess", "/.well-known/../.htaccess", "/core/install.php", "/core/rebuild.php",
           "/sites/default/services.yml", "/core/composer.json", "/composer.json",
           "/dump.sql", "/vendor/autoload.php", "/sites/default/settings.php",
           "/sites/default/settings.local.php", "/core/CHANGELOG.txt", "/index.php~",
           "/RELEASE"]


@pytest.mark.parametrize("path", BLOCKED)
def test_blocked_path_is_403_or_404_and_never_runs(tier, path):
    status, body, _ = tier.curl("villeparisis", path)
    assert status in (403, 404), (status, body[:200])
    assert "EXECUTED" not in body and "yml-must-not" not in body and "blocked-path" not in body


def test_update_php_only_from_admin_networks(tier):
    assert tier.curl("villeparisis", "/update.php")[0] == 200  # the lab machine is admin
    s = tier.site("villeparisis")
    with Probe(tier.lab.lab, "pub", host_offset=probe_offset(tier.lab)) as probe:
        out = subprocess.run(
            ["ip", "netns", "exec", probe.ns, "curl", "-sS", "-o", "/dev/null", "-w",
             "%{http_code}", "--cacert", str(tier.ca), "--resolve",
             f"{s['domain']}:443:{s['public_ip']}", f"https://{s['domain']}/update.php"],
            capture_output=True, text=True, timeout=60).stdout
    assert out == "403"


def test_private_files_written_by_php_are_never_served(tier):
    status, body, _ = tier.curl("villeparisis", "/write-files", args=("-X", "POST"))
    assert status == 200, body
    assert "public file of villeparisis" in tier.curl(
        "villeparisis", "/sites/default/files/fixture/public.txt")[1]
    for path in ("/system/files/fixture/private.txt",
                 "/sites/default/private/fixture/private.txt",
                 "/sites/default/files/../../private/fixture/private.txt",
                 "/private/fixture/private.txt", "/../private/fixture/private.txt"):
        status, body, _ = tier.curl("villeparisis", path)
        assert status != 200 and "private file of" not in body, path


def test_private_files_are_encrypted_on_disk(tier):
    tier.curl("villeparisis", "/write-files", args=("-X", "POST"))
    lab, host = tier.lab, tier.host_of("villeparisis")
    mount = lab.run(host, "findmnt -no FSTYPE,OPTIONS /srv/villeparisis/private").stdout
    assert mount.startswith("fuse.gocryptfs") and "default_permissions" in mount
    plain = lab.sudo(host, "cat /srv/villeparisis/private/fixture/private.txt").stdout
    assert plain.startswith("private file of villeparisis")
    on_disk = lab.sudo(host, "grep -rl 'private file of' /srv/villeparisis/private.enc",
                       check=False)
    assert on_disk.returncode == 1 and on_disk.stdout == ""


def test_php_dropped_into_public_files_is_not_executed(tier):
    lab, host = tier.lab, tier.host_of("villeparisis")
    lab.sudo(host, "printf '<?php echo \"PHP-IN-FILES-EXECUTED\";' > "
                   "/srv/villeparisis/shared/files/evil.php && "
                   "chown villeparisis:villeparisis /srv/villeparisis/shared/files/evil.php")
    try:
        for path in ("/sites/default/files/evil.php", "/sites/default/files/evil.php/x.css",
                     "/sites/default/files/evil.php?q=1"):
            status, body, _ = tier.curl("villeparisis", path)
            assert status in (403, 404) and "EXECUTED" not in body, path
    finally:
        lab.sudo(host, "rm -f /srv/villeparisis/shared/files/evil.php")


# ---- isolation between sites (R-GDPR-4) --------------------------------------------------------

@pytest.mark.parametrize("site", SITES)
def test_site_files_modes_and_owners(tier, site):
    lab, host = tier.lab, tier.host_of(site)
    paths = " ".join(p.format(s=site) for p in (
        "/srv/{s}", "/srv/{s}/current/", "/srv/{s}/shared/files", "/srv/{s}/tmp",
        "/srv/{s}/sessions", "/srv/{s}/private", "/srv/{s}/private.enc", "/etc/hosting/{s}",
        "/etc/hosting/{s}/db.cnf", "/etc/hosting/{s}/hash_salt", "/etc/hosting/{s}/private.pass",
        "/run/php/{s}.sock"))
    rows = lab.sudo(host, f"stat -c '%n %U:%G %a' {paths}").stdout.split("\n")
    got = dict(r.split(" ", 1) for r in rows if r)
    s = site
    assert got == {
        f"/srv/{s}": f"root:{s} 750", f"/srv/{s}/current/": f"{s}-code:{s} 750",
        f"/srv/{s}/shared/files": f"{s}:{s} 2750", f"/srv/{s}/tmp": f"{s}:{s} 700",
        f"/srv/{s}/sessions": f"{s}:{s} 700", f"/srv/{s}/private": f"{s}:{s} 700",
        f"/srv/{s}/private.enc": f"{s}:{s} 700", f"/etc/hosting/{s}": f"root:{s} 750",
        f"/etc/hosting/{s}/db.cnf": f"{s}:{s} 400", f"/etc/hosting/{s}/hash_salt": f"{s}:{s} 400",
        f"/etc/hosting/{s}/private.pass": "root:root 400",
        f"/run/php/{s}.sock": "www-data:www-data 660"}
    # Code: nothing writable by the site's PHP user (group) or anybody else.
    writable = lab.sudo(host, f"find -L /srv/{s}/current/ -maxdepth 6 -perm /022 "
                              f"! -path '*/sites/default/files*' | head").stdout
    assert writable == ""


@pytest.mark.parametrize("site", SITES)
def test_site_db_user_has_its_own_database_only(tier, site):
    lab, host = tier.lab, tier.host_of(site)
    grants = lab.sudo(host, f"mariadb -sN -e \"SHOW GRANTS FOR '{site}'@'localhost'\"").stdout
    lines = [g for g in grants.splitlines() if g]
    assert len(lines) == 2 and lines[0].startswith(f"GRANT USAGE ON *.* TO `{site}`")
    assert f"ON `{tier.site(site)['database']}`.* TO `{site}`@`localhost`" in lines[1]
    assert "ALL PRIVILEGES" not in grants and "GRANT OPTION" not in grants


def _php_can_read(lab, host: str, user: str, path: str) -> bool:
    code = (f"exit(@file_get_contents({path!r}) !== false || @scandir({path!r}) !== false "
            "? 0 : 1);")
    r = lab.sudo(host, f"runuser -u {user} -- /usr/bin/php8.4 -r {shlex.quote(code)}",
                 check=False)
    return r.returncode == 0


def test_another_sites_user_cannot_read_this_sites_code_files_secrets_or_database(tier):
    """A second site on the same host, as the role makes it (its own user, group and DB user),
    tries to read everything of villeparisis: every attempt fails."""
    lab, host = tier.lab, tier.host_of("villeparisis")
    helper = "/usr/bin/python3 /usr/local/lib/hosting/web"
    lab.sudo(host, "id isoprobe >/dev/null 2>&1 || useradd --system --user-group "
                   "--shell /usr/sbin/nologin isoprobe; install -d -m 0750 -o root -g isoprobe "
                   "/etc/hosting/isoprobe")
    try:
        lab.sudo(host, f"{helper} secrets --site isoprobe --etc /etc/hosting/isoprobe "
                       "--database isoprobe && "
                       f"{helper} database --site isoprobe --database isoprobe "
                       "--creds /etc/hosting/isoprobe/db.cnf")
        for path in ("/srv/villeparisis/current/web/index.php",
                     "/srv/villeparisis/shared/files/fixture/public.txt",
                     "/srv/villeparisis/private/fixture/private.txt",
                     "/etc/hosting/villeparisis/db.cnf", "/etc/hosting/villeparisis/hash_salt",
                     "/srv/villeparisis/sessions", "/var/lib/mysql/villeparisis"):
            assert not _php_can_read(lab, host, "isoprobe", path), f"isoprobe read {path}"
        tier.curl("villeparisis", "/")  # the table exists
        client = ("runuser -u isoprobe -- mariadb --defaults-extra-file="
                  "/etc/hosting/isoprobe/db.cnf -sN -e ")
        q = lab.sudo(host, client + "'SELECT * FROM villeparisis.fixture_state'", check=False)
        assert q.returncode != 0 and "denied" in q.stderr
        dbs = lab.sudo(host, client + "'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA'")
        assert dbs.stdout.split() == ["information_schema", "isoprobe"]
    finally:
        lab.sudo(host, "mariadb -e \"DROP USER IF EXISTS 'isoprobe'@'localhost'; "
                       "DROP DATABASE IF EXISTS isoprobe\"; rm -rf /etc/hosting/isoprobe; "
                       "userdel isoprobe", check=False)


def test_db_credentials_never_on_a_command_line(tier):
    lab, host = tier.lab, tier.host_of("villeparisis")
    password = lab.sudo(host, "sed -n 's/^password = //p' /etc/hosting/villeparisis/db.cnf"
                        ).stdout.strip()
    assert len(password) >= 40
    tier.curl("villeparisis", "/")
    cmdlines = lab.sudo(host, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '").stdout
    assert password not in cmdlines
    assert password not in lab.sudo(host, "journalctl --no-pager -q | tail -2000").stdout


# ---- MariaDB baseline (dev-sec mysql-baseline) -------------------------------------------------

@pytest.mark.parametrize("control,what,query", BASELINE_QUERIES,
                         ids=[c[0] for c in BASELINE_QUERIES])
def test_mariadb_baseline_control_holds(tier, control, what, query):
    rows = tier.lab.sudo(tier.host_of("villeparisis"), f"mariadb -sN -e {shlex.quote(query)}")
    assert rows.stdout.strip() == "", f"{control}: {what}"


def test_mariadb_server_options_local_only_no_local_infile(tier):
    lab, host = tier.lab, tier.host_of("participation")
    out = lab.sudo(host, "mariadb -sN -e 'SELECT @@bind_address, @@local_infile, "
                         "@@secure_file_priv, @@have_symlink, @@skip_show_database, "
                         "@@skip_name_resolve'").stdout.split()
    assert out == ["127.0.0.1", "0", "/var/lib/mysql-files/", "DISABLED", "1", "1"]
    local = [line.split()[3] for line in lab.sudo(host, "ss -Hltn 'sport = :3306'"
                                                  ).stdout.splitlines()]
    assert local == ["127.0.0.1:3306"]
    files = lab.sudo(host, "stat -L -c '%U:%G %a' /etc/mysql/my.cnf "
                           "/etc/mysql/mariadb.conf.d/90-hosting.cnf").stdout.split("\n")
    assert files[:2] == ["root:mysql 640", "root:mysql 640"]  # mysql-conf-07/08


# ---- nginx's effective configuration (nginx -T) ------------------------------------------------

def test_proxy_effective_nginx_config(tier):
    conf = tier.lab.sudo("proxy", "nginx -T 2>/dev/null").stdout
    assert "server_tokens off;" in conf and "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    listens = {line.split()[1].rstrip(";") for line in conf.splitlines()
               if line.strip().startswith("listen ")}
    ips = {s["public_ip"] for s in tier.sites.values()}
    assert {a.rsplit(":", 1)[0] for a in listens} == ips  # no wildcard listen anywhere


@pytest.mark.parametrize("site", SITES)
def test_web_host_effective_nginx_config(tier, site):
    conf = tier.lab.sudo(tier.host_of(site), "nginx -T 2>/dev/null").stdout
    private = tier.lab.host(tier.host_of(site))["private_ip"]
    proxy = tier.lab.host("proxy")["private_ip"]
    assert f"listen {private}:443 ssl default_server;" in conf  # the proxy's hop: TLS
    assert "ssl_verify_client on;" in conf
    assert f"set_real_ip_from {proxy};" in conf and "server_tokens off;" in conf


def test_web_host_http_only_from_the_proxy(tier):
    s = tier.site("villeparisis")
    private = tier.lab.host(s["host"])["private_ip"]
    with Probe(tier.lab.lab, "prv", host_offset=250, index=92) as probe:
        assert probe.tcp_open([(private, 80), (private, 443)]) == {f"{private}:80": False,
                                                                 f"{private}:443": False}


# ---- operations ---------------------------------------------------------------------------

def test_maintenance_flag_serves_503_page_then_site_again(tier):
    flag = "/var/lib/hosting/maintenance/villeparisis"
    tier.lab.sudo("proxy", f"touch {flag}")
    try:
        status, body, head = tier.curl("villeparisis", "/")
        assert status == 503 and "Site en maintenance" in body and "retry-after: 120" in head
        assert tier.curl("participation", "/")[0] == 200
    finally:
        tier.lab.sudo("proxy", f"rm -f {flag}")
    assert tier.curl("villeparisis", "/")[0] == 200


def test_backend_down_serves_maintenance_page(tier):
    host = tier.host_of("participation")
    tier.lab.sudo(host, "systemctl stop nginx")
    try:
        status, body, _ = tier.curl("participation", "/")
        assert status == 503 and "Site en maintenance" in body
    finally:
        tier.lab.sudo(host, "systemctl start nginx")
    assert tier.curl("participation", "/")[0] == 200


def test_rate_limit_per_client_ip_answers_429(tier):
    s = tier.site("villeparisis")
    with Probe(tier.lab.lab, "pub", host_offset=probe_offset(tier.lab, 1), index=91) as probe:
        script = (f"for i in $(seq 80); do curl -s -o /dev/null -w '%{{http_code}}\\n' "
                  f"--cacert {tier.ca} --resolve {s['domain']}:443:{s['public_ip']} "
                  f"https://{s['domain']}/whoami & done; wait")
        codes = subprocess.run(["ip", "netns", "exec", probe.ns, "sh", "-c", script],
                               capture_output=True, text=True, timeout=120).stdout.split()
    assert "429" in codes and "200" in codes


@pytest.mark.parametrize("site", SITES)
def test_cron_timer_runs_drupal_cron_as_the_site_user(tier, site):
    lab, host = tier.lab, tier.host_of(site)
    timer = lab.run(host, f"systemctl is-active hosting-cron-{site}.timer").stdout
    assert timer.strip() == "active"
    lab.sudo(host, f"systemctl start hosting-cron-{site}.service")
    unit = lab.run(host, f"systemctl show -p User -p Result hosting-cron-{site}.service").stdout
    assert f"User={site}" in unit and "Result=success" in unit
    last = lab.sudo(host, f"cat /srv/{site}/private/cron-last-run").stdout.strip()
    assert _json(tier.curl(site, "/")[1])["cron_last_run"] == last


def _sslyze() -> str | None:
    venv = Path(sys.executable).with_name("sslyze")  # pip install sslyze (into the venv)
    return str(venv) if venv.exists() else shutil.which("sslyze")


def test_tls_passes_sslyze_mozilla_intermediate(tier):
    sslyze = _sslyze()
    if sslyze is None:
        pytest.skip("sslyze is not installed (pip install sslyze)")
    targets = [f"{s['domain']}{{{s['public_ip']}}}" for s in tier.sites.values()]
    proc = subprocess.run([sslyze, "--mozilla_config=intermediate", "--certinfo_ca_file",
                           str(tier.ca), *targets], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.stdout.count("OK - Compliant.") == len(targets)


def test_second_deploy_changes_nothing(tier):
    hosts = [h["name"] for h in tier.lab.inventory["hosts"] if h["role"] in ("proxy", "web")]
    report = deploy(tier.lab, hosts)
    changes = [a.summary for r in report.results if r.plan for a in r.plan.actions]
    assert report.ok and changes == []


def _eventually(check, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_preprod_exposure_noindex_and_allowlist(tier, tmp_path):
    """The proxy deployed from a preprod-shaped inventory (not indexable, exposure_allow = the
    lab machine): every answer says noindex, and a client outside the list gets nothing."""
    from .test_web_support import lab_env

    doc = json.loads(json.dumps(tier.lab.inventory))
    doc["environment"], doc["indexable"] = "preprod", False
    doc["exposure_allow"] = list(doc["admin_networks"])
    path = tmp_path / "preprod-inventory.json"
    path.write_text(json.dumps(doc))
    from tasks.deploy import run_deploy

    try:
        with lab_env(tier.lab):
            assert run_deploy("lab", hosts="proxy", inventory=str(path), emit=lambda _m: None).ok
        # `systemctl reload nginx` returns before the new workers serve: poll a little.
        assert _eventually(lambda: "x-robots-tag: noindex, nofollow, noarchive"
                           in tier.curl("villeparisis", "/")[2])
        s = tier.site("villeparisis")
        with Probe(tier.lab.lab, "pub", host_offset=probe_offset(tier.lab, 2), index=93) as p:
            out = subprocess.run(
                ["ip", "netns", "exec", p.ns, "curl", "-sS", "-m", "5", "-o", "/dev/null",
                 "-w", "%{http_code}", "-k", "--resolve", f"{s['domain']}:443:{s['public_ip']}",
                 f"https://{s['domain']}/"], capture_output=True, text=True, timeout=60)
        assert out.stdout in ("000", "403")  # dropped by the firewall, or refused by nginx
    finally:
        with lab_env(tier.lab):
            assert run_deploy("lab", hosts="proxy", emit=lambda _m: None).ok
    assert _eventually(lambda: "x-robots-tag" not in tier.curl("villeparisis", "/")[2])


def test_after_a_reboot_private_files_are_mounted_and_the_site_serves(tier):
    """R-GDPR-1 "mounted at boot": reboot a web host; gocryptfs is mounted again from the key
    the host holds, before PHP, and the site answers with its private files readable."""
    import time

    lab, host = tier.lab, tier.host_of("participation")
    tier.curl("participation", "/write-files", args=("-X", "POST"))
    c = lab.lab.container(host)
    nspawn = c.nspawn_pid()
    lab.sudo(host, "systemctl reboot", check=False)  # the connection may drop mid-command
    deadline = time.monotonic() + 120
    while True:
        if c.nspawn_pid() not in (None, nspawn):
            proc = lab.run(host, "systemctl is-system-running --wait", check=False, timeout=90)
            if proc.returncode == 0:
                break
        assert time.monotonic() < deadline, f"{host} did not come back"
        time.sleep(0.5)
    assert lab.run(host, "findmnt -no FSTYPE /srv/participation/private").stdout.strip() == \
        "fuse.gocryptfs"
    assert "private file of participation" in lab.sudo(
        host, "cat /srv/participation/private/fixture/private.txt").stdout
    status, body, _ = tier.curl("participation", "/")
    assert status == 200 and _json(body)["database"] == "participation"
