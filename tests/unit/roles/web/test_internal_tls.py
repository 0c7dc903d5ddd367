"""A web host's side of the proxy -> web hop (issue 19 item 6, R-HOST-1, R-GDPR-2): HTTPS on
its private address for clients with a certificate of the internal CA only, X-Forwarded-For
believed there only; plain HTTP on the loopback for the host's own checks."""
from __future__ import annotations

import dataclasses
import re

from engine.resources import File
from roles.web import render
from roles.web.role import web
from roles.web.site import web_site
from tests.unit.roles.converged import role_ctx

KEY, CERT, CA = ("/etc/nginx/internal-tls/server.key", "/etc/nginx/internal-tls/server.pem",
                 "/etc/nginx/internal-tls/ca.pem")


def _servers(conf: str) -> list[str]:
    return conf.split("\n    server {")[1:]


def test_web_with_internal_tls_installs_its_server_leaf_before_nginx_conf(prod, internal_ca):
    ctx = role_ctx(prod, "web-villeparisis")
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, internal_tls=internal_ca[1]))
    d = web(ctx)
    files = {r.path: (i, r) for i, r in enumerate(d.resources) if isinstance(r, File)}
    conf_at = files["/etc/nginx/nginx.conf"][0]
    assert files[KEY][0] < files[CERT][0] < conf_at and files[CA][0] < conf_at
    assert files[KEY][1].mode == 0o600 and files[KEY][1].sensitive
    assert files[CERT][1].data == internal_ca[1].server("web-villeparisis").cert_pem


def test_web_without_internal_tls_leaves_its_files_alone(prod):
    d = web(role_ctx(prod, "web-villeparisis"))
    assert not {getattr(r, "path", "") for r in d.resources} & {KEY, CERT, CA}


def test_nginx_conf_private_listener_requires_a_client_certificate(prod):
    conf = render.nginx_conf(web_site(prod, "villeparisis"))
    private, loopback = _servers(conf)
    assert "listen 10.20.0.100:443 ssl default_server;" in private
    assert "ssl_verify_client on;" in private and f"ssl_client_certificate {CA};" in private
    assert "ssl_verify_client" not in loopback and "listen 127.0.0.1:80" in loopback


def test_nginx_conf_forwarded_for_trusted_on_the_private_listener_only(prod):
    conf = render.nginx_conf(web_site(prod, "villeparisis"))
    private, loopback = _servers(conf)
    def directive(name: str, text: str) -> list[str]:
        return re.findall(rf"^\s*{name} (\S+);", text, re.M)

    assert directive("set_real_ip_from", private) == ["10.20.0.10"]
    assert directive("set_real_ip_from", loopback) == directive("real_ip_header", loopback) == []
    assert directive("set_real_ip_from", conf.split("\n    server {")[0]) == []
