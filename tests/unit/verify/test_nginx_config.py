"""The verification suite's nginx reader (tests/verify/nginx_config.py) on the configurations
the roles render: what `nginx -T` would print on a host, so tests/verify/test_nginx.py reads
real configurations right before it is pointed at a host."""
from __future__ import annotations

import pytest

from roles.proxy.config import proxy_config
from roles.proxy.render import nginx_conf as proxy_nginx_conf
from roles.web.render import nginx_conf as web_nginx_conf
from roles.web.site import web_site
from tests.verify import nginx_config as nc
from tests.verify.test_nginx import BLOCKED

MIME = "types {\n    text/html html htm;\n    application/json json;\n}\n"


def dump(main: str, **extra: str) -> str:
    """`nginx -T`'s layout: each file after a '# configuration file PATH:' line."""
    files = {"/etc/nginx/nginx.conf": main, "/etc/nginx/mime.types": MIME, **extra}
    return "".join(f"# configuration file {p}:\n{c}\n" for p, c in files.items())


@pytest.fixture
def web(prod):
    return nc.load(dump(web_nginx_conf(web_site(prod, "villeparisis"))))


@pytest.fixture
def proxy(prod):
    return nc.load(dump(proxy_nginx_conf(proxy_config(prod))))


def test_load_expands_includes_in_place():
    root = nc.load(dump("http {\n    include /etc/nginx/mime.types;\n    server_tokens off;\n}"))
    assert [d.name for d in nc.http(root).block] == ["types", "server_tokens"]
    assert nc.http(root).first("types").first("text/html").args == ["html", "htm"]


def test_load_expands_glob_includes_relative_to_etc_nginx():
    root = nc.load(dump("include modules-enabled/*.conf;\nevents {}\nhttp {}\n",
                        **{"/etc/nginx/modules-enabled/50-a.conf": "load_module a.so;",
                           "/etc/nginx/modules-enabled/60-b.conf": "load_module b.so;"}))
    assert [d.args for d in root.all("load_module")] == [["a.so"], ["b.so"]]


def test_parse_quotes_comments_and_variables():
    [d] = nc.parse("add_header X-A \"a; b {c}\" always; # comment ; {\n")
    assert d.args == ["X-A", "a; b {c}", "always"]
    [m] = nc.parse('map $a $b { "~^x\\|(?<p>[0-9]+)$" $p; default ${server_port}; }')
    assert [c.name for c in m.block] == ["~^x\\|(?<p>[0-9]+)$", "default"]


@pytest.mark.parametrize("text", ["http {", "http { }}", "server_tokens off", '"x'])
def test_parse_refuses_broken_text(text):
    with pytest.raises(ValueError):
        nc.parse(text)


def test_inherited_takes_the_innermost_level_only():
    root = nc.load(dump("http { add_header A 1; server { location / { add_header B 2; } "
                        "location /x { } } }"))
    server = nc.servers(root)[0]
    a, b = server.all("location")
    assert [d.args[0] for d in nc.inherited([nc.http(root), server, a], "add_header")] == ["B"]
    assert [d.args[0] for d in nc.inherited([nc.http(root), server, b], "add_header")] == ["A"]


@pytest.mark.parametrize("uri", BLOCKED)
def test_rendered_web_config_refuses_every_blocked_path(web, uri):
    # Both servers: the proxy's HTTPS one and the loopback one for local checks.
    for server in nc.servers(web):
        assert nc.refuses(nc.select_location(server, uri)), uri


@pytest.mark.parametrize("uri", ["/", "/node/1", "/index.php", "/update.php",
                                 "/sites/default/files/report.txt", "/core/misc/drupal.js",
                                 "/.well-known/security.txt", "/system/files/doc.pdf"])
def test_rendered_web_config_serves_pages_files_and_front_controllers(web, uri):
    for server in nc.servers(web):
        assert not nc.refuses(nc.select_location(server, uri)), uri


def test_location_selection_follows_nginx_order():
    root = nc.load(dump("http { server { location = /x { return 201; } "
                        "location ^~ /static/ { return 202; } location ~ \\.php$ { return 203; } "
                        "location /static/a.php.d/ { return 204; } location / { return 205; } } }"))
    [server] = nc.servers(root)

    def code(uri: str) -> str:
        return nc.select_location(server, uri).first("return").args[0]

    assert [code(u) for u in ("/x", "/static/a.php", "/b.php", "/static/a.php.d/c", "/y")] == \
        ["201", "202", "203", "204", "205"]


def test_rendered_proxy_config_has_one_server_per_site_ip_and_port(proxy, prod):
    for site in prod.sites:
        for port in (80, 443):
            found = [s for s in nc.servers(proxy)
                     if f"{site.public_ip}:{port}" in {nc.listen_address(x)
                                                       for x in s.all("listen")}
                     and site.domain in nc.server_names(s)]
            assert len(found) == 1


def test_size_bytes():
    assert [nc.size_bytes(s) for s in ("64m", "512k", "1G", "100")] == \
        [64 * 1024 ** 2, 512 * 1024, 1024 ** 3, 100]


def _proxy_entry(prod) -> dict:
    return next(h for h in prod.doc["hosts"] if h["role"] == "proxy")


def test_csp_check_passes_on_the_rendered_proxy_config(proxy, prod):
    from tests.verify.test_nginx import test_nginx_15_csp_and_permissions_policy_on_every_answer

    test_nginx_15_csp_and_permissions_policy_on_every_answer(proxy, _proxy_entry(prod), prod.doc)


@pytest.mark.parametrize("csp,policy", [
    ("default-src 'self'; frame-ancestors 'self'", None),  # plugins allowed
    ("default-src 'self'; object-src 'none'", None),  # anyone may frame it
    (None, "camera=(), microphone=()"),  # geolocation not denied
])
def test_csp_check_fails_on_a_weaker_policy(prod, csp, policy):
    # The mutation proof of the verify check (issue 17): the same rendered config with one
    # site's policy weakened fails it, naming the site.
    import dataclasses

    from model.types import Headers
    from tests.verify.test_nginx import test_nginx_15_csp_and_permissions_policy_on_every_answer

    cfg = proxy_config(prod)
    old = cfg.sites[0].headers
    weak = Headers(csp or old.content_security_policy, policy or old.permissions_policy)
    cfg = dataclasses.replace(cfg, sites=(dataclasses.replace(cfg.sites[0], headers=weak),
                                          *cfg.sites[1:]))
    conf = nc.load(dump(proxy_nginx_conf(cfg)))
    with pytest.raises(AssertionError, match=cfg.sites[0].name):
        test_nginx_15_csp_and_permissions_policy_on_every_answer(conf, _proxy_entry(prod),
                                                              prod.doc)
