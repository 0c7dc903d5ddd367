"""nginx on the proxy and the web hosts: the effective configuration (`nginx -T` as root,
parsed with its includes, tests/verify/nginx_config.py), the live sockets and processes, held
against what the inventory says (sites, domains, aliases, public and private addresses,
upload limits, admin networks), so the same checks run against the lab and prod.

Ids: dev-sec nginx-baseline's (controls/nginx_spec.rb: nginx-01...). Every control is ported;
nginx-06, 07, 09, 14, 15 and 16 are adapted to a Drupal host, each adaptation said in
tests/verify/nginx_baseline.py (buffers bounded by nginx's defaults and bodies by the site's
upload limit; a per-client `limit_req` instead of `limit_conn`; X-XSS-Protection absent or 0;
TRACE/TRACK refused; a CSP restricting scripts and plugins; PHP told HTTPS so Drupal's session
cookie is Secure). nginx-12 "TLSv1.2 only, server ciphers preferred" is superseded by Mozilla
intermediate (TLS 1.2 + 1.3, client's choice).
The blocked paths are asked of the real nginx with curl (issue 17: not of this suite's model of
location matching), as the proxy reaches the web host: its client certificate, the private
listener.
Requirements: R-HOST-1 (web hosts reachable through the proxy only), R-HOST-2 (one public IP
per site), R-GDPR-2 (TLS on every public endpoint), R-GDPR-4 (each site its own PHP pool).
"""
from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from . import nginx_baseline as nb
from . import nginx_config as nc

pytestmark = pytest.mark.roles("proxy", "web")

# Mozilla's "intermediate" TLS configuration (ssl-config.mozilla.org, guidelines 5.7): the only
# TLS 1.2 suites allowed (TLS 1.3 suites are not configurable in nginx and all are fine).
MOZILLA_INTERMEDIATE_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
}
HSTS_MIN_SECONDS = 31536000  # one year (the roles set two, Mozilla's value)

# Paths Drupal's nginx recipe must refuse on a web host (403/404 from nginx itself, never run
# or served): one URI per rule of docs/web-tier.md ("Blocked, 403/404, never executed").
BLOCKED = [
    "/.git/config", "/.env", "/.htaccess", "/sites/default/.htaccess",
    "/sites/default/files/evil.php", "/sites/default/files/x/evil.phar",
    "/sites/default/files/evil.PHTML", "/sites/default/private/secret.pdf",
    "/vendor/autoload.php", "/core/install.php", "/core/rebuild.php", "/core/authorize.php",
    "/sites/default/services.yml", "/core/core.services.yml", "/composer.json",
    "/composer.lock", "/dump.sql", "/backup.sql.gz", "/index.php.bak", "/index.php.orig",
    "/index.php.save", "/index.php.swp", "/index.php~", "/core/CHANGELOG.txt", "/README.md",
    "/modules/contrib/x/x.module", "/themes/custom/t/templates/page.html.twig",
    "/core/modules/system/tests/http.php", "/sites/default/settings.php",
]

_CONF: dict[str, nc.Directive] = {}


@pytest.fixture(scope="module")
def conf(host: Any, host_entry: dict[str, Any]) -> nc.Directive:
    """The effective configuration (`nginx -T` as root), parsed once per host."""
    name = host_entry["name"]
    if name not in _CONF:
        _CONF[name] = nc.load(host.check_output("nginx -T 2>/dev/null"))
    return _CONF[name]


def _host(inventory: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in inventory["hosts"] if h["name"] == name)


def _proxy(inventory: dict[str, Any]) -> dict[str, Any]:
    return next(h for h in inventory["hosts"] if h["role"] == "proxy")


def sites_of(host_entry: dict[str, Any], inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """The sites a host serves: on the proxy those routed to its IPs, on a web host its own."""
    if host_entry["role"] == "proxy":
        return [s for s in inventory["sites"] if s["public_ip"] in host_entry["site_ips"]]
    return [s for s in inventory["sites"] if s["host"] == host_entry["name"]]


def expected_listens(host_entry: dict[str, Any], inventory: dict[str, Any]) -> set[str]:
    if host_entry["role"] == "proxy":
        return {f"{s['public_ip']}:{port}" for s in sites_of(host_entry, inventory)
                for port in (80, 443)}
    # The proxy's HTTPS hop, and plain HTTP on the loopback for the host's own checks.
    return {f"{host_entry['private_ip']}:443", "127.0.0.1:80"}


def site_server(conf: nc.Directive, site: dict[str, Any], port: int) -> nc.Directive:
    """The server block answering `site`'s domain on its public IP and `port`."""
    found = [s for s in nc.servers(conf)
             if any(nc.listen_address(x) == f"{site['public_ip']}:{port}"
                    for x in s.all("listen"))
             and site["domain"] in nc.server_names(s)]
    assert len(found) == 1, f"{site['name']}: {len(found)} servers for " \
                            f"{site['domain']} on {site['public_ip']}:{port}"
    return found[0]


def web_server(conf: nc.Directive) -> nc.Directive:
    """The server the proxy reaches (one site per web host, R-HOST-2); the other one answers
    on the loopback only, for the host's own health checks."""
    [server] = [s for s in nc.servers(conf)
                if not all(nc.listen_address(x).startswith("127.") for x in s.all("listen"))]
    return server


def headers(levels: list[nc.Directive]) -> dict[str, str]:
    """add_header in force at the innermost level: {lowercased name: value}."""
    return {d.args[0].lower(): d.args[1] for d in nc.inherited(levels, "add_header")}


def levels_to(conf: nc.Directive, server: nc.Directive, uri: str) -> list[nc.Directive]:
    loc = nc.select_location(server, uri)
    assert loc is not None, f"no location serves {uri}"
    return [nc.http(conf), server, loc]


def _fails(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# ---- both roles -------------------------------------------------------------------------------

def test_nginx_config_is_valid(host):
    done = host.run("nginx -t")
    assert done.rc == 0, done.stderr


def test_nginx_service_running_and_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled


def test_nginx_01_workers_run_unprivileged(host, conf):
    assert conf.first("user") is not None and conf.first("user").args[0] not in ("root", "0")
    users = host.check_output("ps -eo user:32=,args= | awk '/nginx: worker process/ "
                              "&& !/awk/ {print $1}'").split()
    assert users and "root" not in users


def test_nginx_02_config_file_root_owned_not_writable_by_others(host):
    # dev-sec also wants it unreadable by others: it holds no secret here (the key is apart).
    f = host.file("/etc/nginx/nginx.conf")
    assert (f.user, f.group) == ("root", "root") and f.mode & 0o022 == 0


def test_nginx_03_no_default_site(host):
    for path in ("/etc/nginx/sites-enabled/default", "/etc/nginx/conf.d/default.conf"):
        assert not host.file(path).exists, path


def test_nginx_04_single_master_process(host):
    assert host.check_output("pgrep -c -f '^nginx: master process'") == "1"


def test_nginx_05_server_tokens_off(conf):
    assert nc.value([nc.http(conf)], "server_tokens") == "off"
    on = [c for c, d in nc.walk(conf) if d.name == "server_tokens" and d.args != ["off"]]
    assert not on, "server_tokens other than off in a server or location"


def test_nginx_no_autoindex(conf):
    assert not [d for _c, d in nc.walk(conf) if d.name == "autoindex" and d.args != ["off"]]


def test_nginx_listens_only_on_the_inventorys_addresses(conf, host_entry, inventory):
    # Proxy: each site's public IP, 80 and 443 (R-HOST-2); web: its private address only,
    # never a wildcard (R-HOST-1).
    got = {nc.listen_address(d) for _c, d in nc.walk(conf) if d.name == "listen"}
    assert got == expected_listens(host_entry, inventory)


def test_nginx_live_sockets_are_the_configured_ones(host, host_entry, inventory):
    # A reload that could not bind keeps the old sockets and still reports success.
    live = set(host.check_output("ss -Hltnp | awk '/\"nginx\"/ {print $4}'").split())
    assert live == expected_listens(host_entry, inventory)


def serving_levels(conf: nc.Directive, host_entry: dict[str, Any],
                   inventory: dict[str, Any]) -> dict[str, list[nc.Directive]]:
    """{label: levels} where pages are served: each site's HTTPS server on the proxy, the
    private and the loopback servers on a web host."""
    if host_entry["role"] == "proxy":
        return {s["name"]: levels_to(conf, site_server(conf, s, 443), "/node/1")
                for s in sites_of(host_entry, inventory)}
    return {" ".join(nc.listen_address(x) for x in server.all("listen")): [nc.http(conf), server]
            for server in nc.servers(conf)}


def test_nginx_06_buffers_bounded(conf, host_entry, inventory):
    problems = [f"{where}: {p}" for where, levels in serving_levels(conf, host_entry,
                                                                    inventory).items()
                for p in nb.buffer_problems(levels)]
    _fails(problems)


def test_nginx_09_no_legacy_xss_filter_header(conf, host_entry, inventory):
    problems = [f"{where}: {p}" for where, levels in serving_levels(conf, host_entry,
                                                                    inventory).items()
                for p in nb.xss_header_problems(headers(levels))]
    _fails(problems)


def live_targets(host_entry: dict[str, Any], inventory: dict[str, Any]) -> list[tuple[str, str]]:
    """(base URL, curl options) reaching this host's nginx from the host itself: the proxy's
    site servers (its own certificate is graded elsewhere, hence -k) or a web host's loopback
    server; HTTP/1.1, where the header limits below are nginx's."""
    if host_entry["role"] == "proxy":
        return [(f"https://{s['domain']}",
                 f"-k --http1.1 --resolve {s['domain']}:443:{s['public_ip']}")
                for s in sites_of(host_entry, inventory)]
    [site] = sites_of(host_entry, inventory)
    return [("http://127.0.0.1", f"--http1.1 -H 'Host: {site['domain']}'")]


def test_nginx_06_oversized_header_and_body_refused_live(host, host_entry, inventory):
    # The buffers in force, seen from outside: a 16 KB header line (over 8k) gets 400 and a
    # body announced over the limit gets 413, both from nginx before anything is read or run.
    problems = []
    for base, args in live_targets(host_entry, inventory):
        header = "X-Pad: " + "a" * 16384
        big = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {args} "
                       f"-H {shlex.quote(header)} {base}/").stdout.strip()
        body = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {args} "
                        f"-X POST -H 'Content-Length: 109951162777600' {base}/node"
                        ).stdout.strip()
        if (big, body) != ("400", "413"):
            problems.append(f"{base}: 16 KB header -> {big}, 100 TB body -> {body}; "
                            "want 400, 413")
    _fails(problems)


def test_nginx_14_trace_and_track_refused_live(host, host_entry, inventory):
    # Cross-site tracing: the methods that echo a request back never get a 2xx.
    problems = []
    for base, args in live_targets(host_entry, inventory):
        for method in nb.REFUSED_METHODS:
            code = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {args} "
                            f"-X {method} {base}/").stdout.strip()
            if code not in ("400", "403", "405", "501"):
                problems.append(f"{base}: {method} -> {code}")
    _fails(problems)


# ---- proxy -----------------------------------------------------------------------------------

@pytest.mark.roles("proxy")
def test_proxy_site_listens_on_its_ip_443_with_ssl_and_http2(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        server = site_server(conf, site, 443)
        [listen] = server.all("listen")
        http2 = "http2" in listen.args or nc.value([nc.http(conf), server], "http2") == "on"
        if "ssl" not in listen.args or not http2:
            problems.append(f"{site['name']}: listen {' '.join(listen.args)}, http2 {http2}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_server_names_are_domain_and_aliases(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        want = {site["domain"], *site["aliases"]}
        for port in (80, 443):
            names = nc.server_names(site_server(conf, site, port))
            if names != want:
                problems.append(f"{site['name']}:{port}: {sorted(names)} != {sorted(want)}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_other_names_on_a_site_ip_get_nothing(conf, host_entry, inventory):
    # R-HOST-2: a site's IP never serves another site: the default server of each IP refuses
    # the TLS handshake (443) or closes the connection (80, 444).
    problems = []
    for site in sites_of(host_entry, inventory):
        for port, refusal in ((443, ("ssl_reject_handshake", ["on"])), (80, ("return", ["444"]))):
            default = [s for s in nc.servers(conf) for x in s.all("listen")
                       if x.args[0] == f"{site['public_ip']}:{port}"
                       and "default_server" in x.args]
            if len(default) != 1 or [d.args for d in default[0].all(refusal[0])] != \
                    [refusal[1]]:
                problems.append(f"{site['name']}:{port}: no default server with "
                                f"{refusal[0]} {' '.join(refusal[1])}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_nginx_12_tls_protocols_are_1_2_and_1_3_only(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        protocols = nc.value([nc.http(conf), site_server(conf, site, 443)], "ssl_protocols")
        if set((protocols or "").split()) != {"TLSv1.2", "TLSv1.3"}:
            problems.append(f"{site['name']}: ssl_protocols {protocols}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_nginx_12_ciphers_mozilla_intermediate_no_session_tickets(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        levels = [nc.http(conf), site_server(conf, site, 443)]
        ciphers = set((nc.value(levels, "ssl_ciphers") or "").split(":"))
        if not ciphers or ciphers - MOZILLA_INTERMEDIATE_CIPHERS:
            problems.append(f"{site['name']}: ciphers outside Mozilla intermediate: "
                            f"{sorted(ciphers - MOZILLA_INTERMEDIATE_CIPHERS)}")
        if nc.value(levels, "ssl_session_tickets") != "off":
            problems.append(f"{site['name']}: ssl_session_tickets not off")
    _fails(problems)


def _covers(pattern: str, name: str) -> bool:
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def acme_pair(inventory: dict[str, Any], site: dict[str, Any]) -> tuple[str, str] | None:
    """docs/tls.md, written again here: with `acme.enabled`, the first certificate set whose
    names cover all the site's names (none listed: one set, the sites' common parent domain
    and its wildcard, named after it) is served from /etc/ssl/hosting/acme/<lineage>/."""
    acme = inventory.get("acme") or {}
    if not acme.get("enabled"):
        return None
    sets = acme.get("certificates")
    if not sets:
        labels = [n.split(".")[::-1] for s in inventory["sites"]
                  for n in (s["domain"], *s["aliases"])]
        common = []
        for parts in zip(*labels, strict=False):
            if len(set(parts)) != 1:
                break
            common.append(parts[0])
        parent = ".".join(reversed(common))
        sets = [{"name": parent, "names": [parent, f"*.{parent}"]}]
    for cert in sets:
        if all(any(_covers(p, n) for p in cert["names"])
               for n in (site["domain"], *site["aliases"])):
            lineage = cert.get("name") or cert["names"][0].removeprefix("*.")
            return (f"/etc/ssl/hosting/acme/{lineage}/fullchain.pem",
                    f"/etc/ssl/hosting/acme/{lineage}/privkey.pem")
    return None


@pytest.mark.roles("proxy")
def test_proxy_certificate_is_the_inventorys_and_its_key_root_only(host, conf, host_entry,
                                                                    inventory):
    # R-SCOPE-2 / R-GDPR-2: the wildcard certificate where the model puts it; its key 0600.
    # With ACME on (issue 14) a site covered by a certificate set is served its lineage's pair.
    tls = inventory["tls"]
    keys = {tls["key"]}
    for site in sites_of(host_entry, inventory):
        want = acme_pair(inventory, site) or (tls["certificate"], tls["key"])
        keys.add(want[1])
        levels = [nc.http(conf), site_server(conf, site, 443)]
        assert (nc.value(levels, "ssl_certificate"), nc.value(levels, "ssl_certificate_key")) \
            == want, site["name"]
    for path in sorted(keys):
        key = host.file(path)
        assert key.user == "root" and key.mode & 0o077 == 0, path


@pytest.mark.roles("proxy")
def test_nginx_13_hsts_on_every_answer(conf, host_entry, inventory):
    # Checked at the location serving pages: an add_header there would drop the server's.
    problems = []
    for site in sites_of(host_entry, inventory):
        hsts = headers(levels_to(conf, site_server(conf, site, 443), "/node/1")).get(
            "strict-transport-security", "")
        m = re.search(r"max-age=(\d+)", hsts)
        if not m or int(m.group(1)) < HSTS_MIN_SECONDS:
            problems.append(f"{site['name']}: Strict-Transport-Security {hsts!r}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_nginx_08_10_frame_options_and_nosniff(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        got = headers(levels_to(conf, site_server(conf, site, 443), "/node/1"))
        if got.get("x-frame-options", "").upper() not in ("SAMEORIGIN", "DENY") or \
                got.get("x-content-type-options") != "nosniff":
            problems.append(f"{site['name']}: {got}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_nginx_15_csp_and_permissions_policy_on_every_answer(conf, host_entry, inventory):
    # Issue 17: a Content-Security-Policy that at least forbids plugins and framing by others,
    # and a Permissions-Policy that at least denies camera, microphone and geolocation; a
    # baseline of our own, not the model's values read back.
    problems = []
    for site in sites_of(host_entry, inventory):
        got = headers(levels_to(conf, site_server(conf, site, 443), "/node/1"))
        csp = got.get("content-security-policy", "").strip('"')
        policy = got.get("permissions-policy", "").strip('"')
        if "default-src" not in csp or not ("object-src 'none'" in csp or
                                            "default-src 'none'" in csp) \
                or "frame-ancestors" not in csp:
            problems.append(f"{site['name']}: Content-Security-Policy {csp!r}")
        if not all(f"{feature}=()" in policy for feature in ("camera", "microphone",
                                                               "geolocation")):
            problems.append(f"{site['name']}: Permissions-Policy {policy!r}")
        problems += [f"{site['name']}: {p}" for p in nb.csp_problems(csp)]  # nginx-15
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_hides_backend_version_headers(conf):
    hidden = {d.args[0].lower() for d in nc.http(conf).all("proxy_hide_header")}
    assert {"x-powered-by", "x-generator"} <= hidden


@pytest.mark.roles("proxy")
def test_proxy_http_redirects_to_https_except_acme_challenge(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        server = site_server(conf, site, 80)
        page = nc.select_location(server, "/node/1?x=1")
        ret = page.first("return") if page else None
        if ret is None or ret.args[0] not in ("301", "308") or \
                not ret.args[1].startswith("https://$host"):
            problems.append(f"{site['name']}: / is not redirected to https")
        acme = nc.select_location(server, "/.well-known/acme-challenge/token")
        if acme is None or acme is page or acme.first("return") or not acme.first("root"):
            problems.append(f"{site['name']}: /.well-known/acme-challenge/ not served as files")
        if [d for _c, d in nc.walk(server) if d.name == "proxy_pass"]:
            problems.append(f"{site['name']}: plain HTTP reaches the web host")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_passes_to_the_sites_web_host_private_address(conf, host_entry, inventory):
    # R-HOST-1: the proxy is the way in; each site goes to its own web host over the vRack.
    upstreams = {u.args[0]: u for u in nc.http(conf).all("upstream")}
    problems = []
    for site in sites_of(host_entry, inventory):
        loc = nc.select_location(site_server(conf, site, 443), "/node/1")
        target = loc.first("proxy_pass").args[0] if loc and loc.first("proxy_pass") else ""
        name = re.sub(r"^https?://", "", target)
        backends = ([s.args[0] for s in upstreams[name].all("server")] if name in upstreams
                    else [name])
        want = f"{_host(inventory, site['host'])['private_ip']}:443"
        if backends != [want]:
            problems.append(f"{site['name']}: proxied to {backends}, want [{want}]")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_sets_x_forwarded_headers_replacing_the_clients(conf, host_entry, inventory):
    # X-Forwarded-For is *set* to the client address: appending ($proxy_add_x_forwarded_for)
    # would let a client write the address the web host logs and trusts.
    want = {"x-forwarded-for": "$remote_addr", "x-forwarded-proto": "$scheme",
            "x-forwarded-host": "$host", "host": "$host"}
    problems = []
    for site in sites_of(host_entry, inventory):
        levels = levels_to(conf, site_server(conf, site, 443), "/node/1")
        got = {d.args[0].lower(): d.args[1] for d in nc.inherited(levels, "proxy_set_header")}
        wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        if wrong:
            problems.append(f"{site['name']}: {wrong}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_body_limit_is_the_sites_upload_limit(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        levels = levels_to(conf, site_server(conf, site, 443), "/node/1")
        size = nc.value(levels, "client_max_body_size") or "1m"
        if nc.size_bytes(size) != site["php"]["upload_max_mb"] * 1024 * 1024:
            problems.append(f"{site['name']}: {size}, upload_max_mb "
                            f"{site['php']['upload_max_mb']}")
    _fails(problems)


@pytest.mark.roles("proxy")
def test_nginx_07_proxy_rate_limits_dynamic_requests_per_client(conf, host_entry, inventory):
    problems = []
    for site in sites_of(host_entry, inventory):
        levels = levels_to(conf, site_server(conf, site, 443), "/node/1")
        problems += [f"{site['name']}: {p}" for p in nb.rate_limit_problems(nc.http(conf),
                                                                             levels)]
    _fails(problems)


@pytest.mark.roles("proxy")
def test_proxy_exposure_follows_the_inventory(conf, host_entry, inventory):
    # Preprod (indexable false): exposure_allow only, and noindex on every answer; prod: open.
    indexable = inventory.get("indexable", True)
    allow = set(inventory.get("exposure_allow") or ())
    problems = []
    for site in sites_of(host_entry, inventory):
        levels = levels_to(conf, site_server(conf, site, 443), "/node/1")
        allowed = {d.args[0] for d in nc.inherited(levels, "allow")}
        denied = [d.args for d in nc.inherited(levels, "deny")]
        robots = headers(levels).get("x-robots-tag", "")
        if indexable and (denied or robots):
            problems.append(f"{site['name']}: indexable but deny {denied} / X-Robots-Tag")
        if not indexable and (allowed != allow or denied != [["all"]] or
                              "noindex" not in robots):
            problems.append(f"{site['name']}: allow {sorted(allowed)} deny {denied} "
                            f"X-Robots-Tag {robots!r}; want allow {sorted(allow)}")
    _fails(problems)


# ---- web hosts ---------------------------------------------------------------------------------

@pytest.mark.roles("web")
def test_web_real_ip_only_from_the_proxy(conf, inventory):
    # The client address (and HTTPS) are believed only from the proxy's private address.
    levels = [nc.http(conf), web_server(conf)]
    trusted = [d.args[0] for d in nc.inherited(levels, "set_real_ip_from")]
    assert trusted == [_proxy(inventory)["private_ip"]]
    assert nc.value(levels, "real_ip_header") == "X-Forwarded-For"


@pytest.mark.roles("web")
def test_web_private_listener_requires_the_proxys_client_certificate(conf):
    # Issue 19 item 6: TLS on the private hop, and only a client with a certificate of the
    # internal CA (the proxy's) is served; the loopback listener trusts no forwarded header.
    levels = [nc.http(conf), web_server(conf)]
    assert [a for x in web_server(conf).all("listen") for a in x.args[1:2]] == ["ssl"]
    assert nc.value(levels, "ssl_verify_client") == "on"
    assert nc.value(levels, "ssl_client_certificate")
    for server in nc.servers(conf):
        if server is not web_server(conf):
            assert not nc.inherited([nc.http(conf), server], "set_real_ip_from")


def curl_script(base: str, uris: list[str], args: str = "") -> str:
    """bash: for each URI `STATUS ORIGIN URI`, ORIGIN "nginx" when the body is nginx's own
    error page (not a page PHP wrote), STATUS 000 when curl got no answer."""
    words = " ".join(shlex.quote(u) for u in uris)
    return (f"for u in {words}; do body=$(curl -s --max-time 10 {args} -w '\\n%{{http_code}}' "
            f"\"{base}$u\"); code=${{body##*$'\\n'}}; case \"$body\" in "
            f"*{shlex.quote(nb.NGINX_ERROR_PAGE)}*) o=nginx;; *) o=other;; esac; "
            "printf '%s %s %s\\n' \"$code\" \"$o\" \"$u\"; done")


def parse_answers(out: str) -> dict[str, tuple[str, str]]:
    answers = {}
    for line in out.splitlines():
        code, origin, uri = line.split(" ", 2)
        answers[uri] = (code, origin)
    return answers


_ANSWERS: dict[str, dict[str, dict[str, tuple[str, str]]]] = {}
PAGES = ["/"]  # answered by Drupal: proves the probes reach the site at all


@pytest.fixture(scope="module")
def answers(host, conf, host_entry, inventory, host_named):
    """{"private listener" | "loopback": {uri: (status, origin)}} from the real nginx of a web
    host: through its private listener from the proxy, with the proxy's client certificate
    (the server the sites' visitors reach), and on its own loopback server."""
    name = host_entry["name"]
    if name not in _ANSWERS:
        [site] = sites_of(host_entry, inventory)
        uris = BLOCKED + PAGES
        proxy = _proxy(inventory)
        pconf = nc.load(host_named(proxy["name"]).check_output("nginx -T 2>/dev/null"))
        tls = {k: nc.value([nc.http(pconf)], k) for k in (
            "proxy_ssl_certificate", "proxy_ssl_certificate_key",
            "proxy_ssl_trusted_certificate")}
        listen = nc.listen_address(web_server(conf).all("listen")[0])
        port = listen.rsplit(":", 1)[1]
        args = (f"--http1.1 --cert {tls['proxy_ssl_certificate']} --key "
                f"{tls['proxy_ssl_certificate_key']} --cacert "
                f"{tls['proxy_ssl_trusted_certificate']} --resolve "
                f"{name}:{port}:{host_entry['private_ip']} -H 'Host: {site['domain']}'")
        private = host_named(proxy["name"]).check_output(
            "bash -c " + shlex.quote(curl_script(f"https://{name}:{port}", uris, args)))
        loopback = host.check_output("bash -c " + shlex.quote(curl_script(
            "http://127.0.0.1", uris, f"-H 'Host: {site['domain']}'")))
        _ANSWERS[name] = {"private listener": parse_answers(private),
                          "loopback": parse_answers(loopback)}
    return _ANSWERS[name]


@pytest.mark.roles("web")
@pytest.mark.parametrize("uri", BLOCKED)
def test_web_blocked_path_is_refused_by_nginx(answers, uri):
    # Asked of the real nginx (curl): 403/404 with nginx's own error page, never PHP's answer.
    wrong = {where: got[uri] for where, got in answers.items()
             if not nb.refused_by_nginx(*got[uri])}
    assert not wrong, f"{uri}: {wrong}"


@pytest.mark.roles("web")
def test_web_pages_are_answered_by_drupal_not_refused(answers):
    # The counter-proof: the same probes reach the site, so a refusal above is nginx's rule.
    for where, got in answers.items():
        for uri in PAGES:
            code, origin = got[uri]
            assert code.startswith(("2", "3")) and origin == "other", f"{where} {uri}: {got[uri]}"


@pytest.mark.roles("web")
def test_web_front_controller_goes_to_the_sites_own_php_fpm_socket(conf, host_entry,
                                                                   inventory):
    # R-GDPR-4: only this site's pool, by its own socket; no other fastcgi_pass anywhere.
    [site] = sites_of(host_entry, inventory)
    socket = f"unix:/run/php/{site['name']}.sock"
    server = web_server(conf)
    for uri in ("/index.php", "/update.php"):
        loc = nc.select_location(server, uri)
        assert loc is not None and [d.args for d in loc.all("fastcgi_pass")] == [[socket]], uri
    passes = {d.args[0] for _c, d in nc.walk(conf) if d.name == "fastcgi_pass"}
    assert passes == {socket}
    roots = {d.args[0] for _c, d in nc.walk(conf) if d.name in ("root", "alias")}
    assert roots == {f"/srv/{site['name']}/current/web"}  # never the private files


@pytest.mark.roles("web")
def test_web_update_php_only_from_admin_networks(conf, inventory):
    loc = nc.select_location(web_server(conf), "/update.php")
    guard = loc.first("if") if loc else None
    assert guard is not None and guard.first("return").args == ["403"]
    variable = guard.args[0].lstrip("(")
    geo = next(g for g in nc.http(conf).all("geo") if g.args[-1] == variable)
    networks = {d.name for d in geo.block or () if d.args == ["1"]}
    assert networks == set(inventory.get("admin_networks", ()))


@pytest.mark.roles("web")
def test_web_php_never_gets_a_clients_proxy_header(conf):
    # httpoxy: every request to PHP sends HTTP_PROXY empty.
    for chain, d in nc.walk(conf):
        if d.name == "fastcgi_pass":
            params = {p.args[0]: p.args[1:] for p in nc.inherited(chain, "fastcgi_param")}
            assert params.get("HTTP_PROXY") == [""], chain[-1].args


@pytest.mark.roles("web")
def test_nginx_16_php_told_https_for_the_proxys_https_requests(conf, inventory):
    _fails(nb.https_to_php_problems(conf, _proxy(inventory)["private_ip"]))


@pytest.mark.roles("web")
def test_web_body_limit_is_the_sites_upload_limit(conf, host_entry, inventory):
    [site] = sites_of(host_entry, inventory)
    size = nc.value([nc.http(conf), web_server(conf)], "client_max_body_size") or "1m"
    assert nc.size_bytes(size) == site["php"]["upload_max_mb"] * 1024 * 1024
