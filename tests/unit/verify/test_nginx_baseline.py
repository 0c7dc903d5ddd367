"""The nginx controls issue 17 ported (tests/verify/nginx_baseline.py, used by
tests/verify/test_nginx.py): they pass on the configurations the roles render, and each fails
once the configuration or the live answer is broken on purpose (the mutation proofs). The
checks themselves import nothing of roles/; only this test renders with them, as data."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from roles.proxy.config import proxy_config
from roles.proxy.render import nginx_conf as proxy_nginx_conf
from roles.web.render import nginx_conf as web_nginx_conf
from roles.web.site import web_site
from tests.verify import nginx_baseline as nb
from tests.verify import nginx_config as nc
from tests.verify import test_nginx as tn

MIME = "types {\n    text/html html htm;\n}\n"


def load(main: str) -> nc.Directive:
    files = {"/etc/nginx/nginx.conf": main, "/etc/nginx/mime.types": MIME}
    return nc.load("".join(f"# configuration file {p}:\n{c}\n" for p, c in files.items()))


@pytest.fixture
def web_text(prod) -> str:
    return web_nginx_conf(web_site(prod, "villeparisis"))


@pytest.fixture
def proxy_text(prod) -> str:
    return proxy_nginx_conf(proxy_config(prod))


def entry(prod, name: str) -> dict:
    return next(h for h in prod.doc["hosts"] if h["name"] == name)


def proxy_entry(prod) -> dict:
    return next(h for h in prod.doc["hosts"] if h["role"] == "proxy")


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# ---- nginx-06 ----------------------------------------------------------------------------------

def test_buffers_check_passes_on_rendered_configs(prod, web_text, proxy_text):
    tn.test_nginx_06_buffers_bounded(load(web_text), entry(prod, "web-villeparisis"), prod.doc)
    tn.test_nginx_06_buffers_bounded(load(proxy_text), proxy_entry(prod), prod.doc)


@pytest.mark.parametrize("directive,found", [
    ("large_client_header_buffers 8 64k;", "large_client_header_buffers 8 64k > 4 8k"),
    ("client_header_buffer_size 64k;", "client_header_buffer_size 64k > 1k"),
    ("client_body_buffer_size 10m;", "client_body_buffer_size 10m > 16k"),
])
def test_buffers_check_larger_buffer_fails(prod, web_text, directive, found):
    conf = load(edit(web_text, "    client_max_body_size", f"    {directive}\n    "
                                                           "client_max_body_size"))
    with pytest.raises(AssertionError, match=found):
        tn.test_nginx_06_buffers_bounded(conf, entry(prod, "web-villeparisis"), prod.doc)


def test_buffers_check_unlimited_body_fails(prod, proxy_text):
    site = proxy_config(prod).sites[0]
    conf = load(edit(proxy_text, f"client_max_body_size {site.limits.upload_mb}m;",
                     "client_max_body_size 0;"))
    with pytest.raises(AssertionError, match="client_max_body_size 0"):
        tn.test_nginx_06_buffers_bounded(conf, proxy_entry(prod), prod.doc)


class FakeHost:
    """testinfra's host.run for the live checks: every curl answers `status`."""

    def __init__(self, status: str) -> None:
        self.status, self.commands = status, []

    def run(self, command: str) -> SimpleNamespace:
        self.commands.append(command)
        return SimpleNamespace(stdout=self.status, rc=0)


def test_live_limits_check_request_not_refused_fails(prod):
    # A host whose nginx read a 16 KB header and a 100 TB body without refusing them.
    fake = FakeHost("200")
    with pytest.raises(AssertionError, match="want 400, 413"):
        tn.test_nginx_06_oversized_header_and_body_refused_live(
            fake, entry(prod, "web-villeparisis"), prod.doc)
    assert any("Content-Length: 109951162777600" in c for c in fake.commands)


def test_live_trace_check_trace_answered_fails(prod):
    with pytest.raises(AssertionError, match="TRACE -> 200"):
        tn.test_nginx_14_trace_and_track_refused_live(FakeHost("200"), proxy_entry(prod),
                                                      prod.doc)
    tn.test_nginx_14_trace_and_track_refused_live(FakeHost("405"), proxy_entry(prod), prod.doc)


# ---- nginx-07 ----------------------------------------------------------------------------------

def test_rate_limit_check_passes_on_rendered_proxy(prod, proxy_text):
    tn.test_nginx_07_proxy_rate_limits_dynamic_requests_per_client(
        load(proxy_text), proxy_entry(prod), prod.doc)


def test_rate_limit_check_no_limit_req_fails(prod, proxy_text):
    text = "\n".join(line for line in proxy_text.splitlines()
                     if not line.strip().startswith("limit_req zone="))
    with pytest.raises(AssertionError, match="no limit_req where pages are served"):
        tn.test_nginx_07_proxy_rate_limits_dynamic_requests_per_client(
            load(text), proxy_entry(prod), prod.doc)


def test_rate_limit_check_zone_not_keyed_by_client_fails(prod, proxy_text):
    text = proxy_text.replace("limit_req_zone $hosting_limit_key", "limit_req_zone $host")
    with pytest.raises(AssertionError, match="keyed by \\$host, not the client address"):
        tn.test_nginx_07_proxy_rate_limits_dynamic_requests_per_client(
            load(text), proxy_entry(prod), prod.doc)


# ---- nginx-09 ----------------------------------------------------------------------------------

def test_xss_header_check_old_filter_fails(prod, proxy_text):
    tn.test_nginx_09_no_legacy_xss_filter_header(load(proxy_text), proxy_entry(prod), prod.doc)
    text = proxy_text.replace('add_header X-Frame-Options "SAMEORIGIN" always;',
                              'add_header X-Frame-Options "SAMEORIGIN" always;\n'
                              '        add_header X-XSS-Protection "1; mode=block" always;')
    with pytest.raises(AssertionError, match="nginx-09: X-XSS-Protection '1; mode=block'"):
        tn.test_nginx_09_no_legacy_xss_filter_header(load(text), proxy_entry(prod), prod.doc)


def test_xss_header_problems_zero_passes():
    assert nb.xss_header_problems({"x-xss-protection": "0"}) == []
    assert nb.xss_header_problems({}) == []


# ---- nginx-15 ----------------------------------------------------------------------------------

def test_csp_problems_default_policy_passes(prod):
    assert nb.csp_problems(prod.sites[0].headers.content_security_policy) == []


@pytest.mark.parametrize("csp,found", [
    ("", "no Content-Security-Policy"),
    ("default-src 'self'; script-src 'self' 'unsafe-inline'; object-src 'none'",
     "scripts allowed from 'unsafe-inline'"),
    ("default-src *; object-src 'none'", "scripts allowed from *"),
    ("script-src 'self' https:; object-src 'none'", "scripts allowed from https:"),
    ("default-src 'self'; object-src https://cdn.example", "object-src https://cdn.example"),
    ("style-src 'self'", "neither script-src nor default-src"),
], ids=["none", "unsafe-inline", "any-host", "bare-scheme", "plugins", "no-script-rule"])
def test_csp_problems_loose_policy_fails(csp, found):
    assert any(found in p for p in nb.csp_problems(csp))


# ---- nginx-16 ----------------------------------------------------------------------------------

def test_https_check_passes_on_rendered_web(prod, web_text):
    tn.test_nginx_16_php_told_https_for_the_proxys_https_requests(load(web_text), prod.doc)


def test_https_check_param_removed_fails(prod, web_text):
    text = "\n".join(line for line in web_text.splitlines()
                     if "fastcgi_param HTTPS" not in line)
    with pytest.raises(AssertionError, match="no fastcgi_param HTTPS"):
        tn.test_nginx_16_php_told_https_for_the_proxys_https_requests(load(text), prod.doc)


def test_https_check_map_not_on_for_the_proxy_fails(prod, web_text):
    text = web_text.replace('|https" on;', '|https" "";')
    with pytest.raises(AssertionError, match="is not 'on' for the proxy's HTTPS requests"):
        tn.test_nginx_16_php_told_https_for_the_proxys_https_requests(load(text), prod.doc)


# ---- blocked paths, asked of the real nginx ------------------------------------------------------

def answers(broken: str | None = None) -> dict:
    """What curl gets from a healthy web host (nginx's own 403/404 pages, Drupal's front page);
    `broken`: a blocked path answered by PHP (its location removed: Drupal's own 404)."""
    got = {uri: ("404", "nginx") for uri in tn.BLOCKED} | {"/": ("200", "other")}
    if broken:
        got[broken] = ("404", "other")
    return {"private listener": got, "loopback": dict(got)}


def test_blocked_path_check_refused_by_nginx_passes():
    for uri in tn.BLOCKED:
        tn.test_web_blocked_path_is_refused_by_nginx(answers(), uri)
    tn.test_web_pages_are_answered_by_drupal_not_refused(answers())


def test_blocked_path_check_answered_by_php_fails():
    # A 404 is not enough: Drupal's own 404 means PHP ran for the path.
    with pytest.raises(AssertionError, match="/core/CHANGELOG.txt"):
        tn.test_web_blocked_path_is_refused_by_nginx(answers("/core/CHANGELOG.txt"),
                                                      "/core/CHANGELOG.txt")


def test_pages_check_everything_refused_fails():
    refused = {w: {u: ("403", "nginx") for u in got} for w, got in answers().items()}
    with pytest.raises(AssertionError, match="403"):
        tn.test_web_pages_are_answered_by_drupal_not_refused(refused)


def test_parse_answers_keeps_spaces_in_the_uri():
    assert tn.parse_answers("404 nginx /a b\n000 other /x\n") == {
        "/a b": ("404", "nginx"), "/x": ("000", "other")}
