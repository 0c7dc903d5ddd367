"""The proxy's side of the proxy -> web hop (issue 19 item 6, R-GDPR-2): HTTPS to each web
host with its client certificate from the internal CA, the web host's certificate verified."""
from __future__ import annotations

import dataclasses
import re

from engine.resources import File
from roles.proxy.config import proxy_config
from roles.proxy.render import nginx_conf
from roles.proxy.role import proxy
from tests.unit.roles.converged import role_ctx

KEY, CERT, CA = ("/etc/nginx/internal-tls/client.key", "/etc/nginx/internal-tls/client.pem",
                 "/etc/nginx/internal-tls/ca.pem")


def _ctx(prod, internal_ca):
    ctx = role_ctx(prod, "proxy")
    return dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, internal_tls=internal_ca[1]))


def test_proxy_with_internal_tls_installs_key_cert_and_ca_before_nginx_conf(prod, internal_ca):
    d = proxy(_ctx(prod, internal_ca))
    files = {r.path: (i, r) for i, r in enumerate(d.resources) if isinstance(r, File)}
    conf_at = files["/etc/nginx/nginx.conf"][0]
    assert files[KEY][0] < files[CERT][0] < conf_at and files[CA][0] < conf_at
    key = files[KEY][1]
    assert key.mode == 0o600 and key.owner == "root" and key.sensitive
    assert key.data == internal_ca[1].client("proxy").key_pem
    assert files[CA][1].data == internal_ca[1].ca_pem


def test_proxy_without_internal_tls_leaves_its_files_alone(prod):
    d = proxy(role_ctx(prod, "proxy"))
    paths = {getattr(r, "path", "") for r in d.resources}
    assert not paths & {KEY, CERT, CA}
    conf = next(r for r in d.resources if getattr(r, "path", "") == "/etc/nginx/nginx.conf")
    assert f"proxy_ssl_certificate_key {KEY};" in conf.data.decode()


def test_nginx_conf_proxies_over_https_verifying_each_web_hosts_name(prod):
    conf = nginx_conf(proxy_config(prod), {"villeparisis": "web-villeparisis",
                                           "participation": "web-participation"})
    assert re.findall(r"proxy_pass (\S+);", conf) == ["https://site_villeparisis",
                                                     "https://site_participation"]
    assert re.findall(r"proxy_ssl_name (\S+);", conf) == ["web-villeparisis",
                                                         "web-participation"]
    for line in ("proxy_ssl_verify on;", f"proxy_ssl_certificate {CERT};",
                 f"proxy_ssl_trusted_certificate {CA};", "proxy_ssl_session_reuse on;",
                 "keepalive 32;"):
        assert line in conf, line


def test_nginx_conf_hop_offers_aes128_gcm_first_in_tls13_only(prod):
    # The hop's per-request cost (bench/proxy_hop_bench.py): the cheapest TLS 1.3 suite first.
    conf = nginx_conf(proxy_config(prod), {"villeparisis": "web-villeparisis",
                                           "participation": "web-participation"})
    assert "proxy_ssl_protocols TLSv1.3;" in conf
    suites = re.findall(r"proxy_ssl_conf_command Ciphersuites (\S+);", conf)
    assert suites == ["TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                      "TLS_CHACHA20_POLY1305_SHA256"]


def test_nginx_conf_site_without_web_host_name_refused(prod):
    try:
        nginx_conf(proxy_config(prod), {"villeparisis": "web-villeparisis"})
    except ValueError as exc:
        assert "participation" in str(exc)
    else:
        raise AssertionError("no error")
