"""The proxy role through the deploy engine's own decisions (engine.decide): its TLS
certificate and key, and that a host already in the desired state gets nothing."""
from __future__ import annotations

import shutil

import pytest

from engine.decide import decide
from engine.facts import CommandFact
from engine.resources import File
from roles.proxy.role import proxy
from tests.unit.roles.converged import converged, role_ctx


@pytest.fixture
def tls_dir(tmp_path, monkeypatch, test_cert):
    shutil.copy(test_cert[0], tmp_path / "fullchain.pem")
    shutil.copy(test_cert[1], tmp_path / "privkey.pem")
    monkeypatch.setenv("HOSTING_TLS_DIR", str(tmp_path))
    return tmp_path


def test_proxy_without_tls_source_leaves_certificate_alone(prod, monkeypatch):
    monkeypatch.delenv("HOSTING_TLS_DIR", raising=False)
    d = proxy(role_ctx(prod, "proxy"))
    paths = {getattr(r, "path", "") for r in d.resources}
    assert "/etc/ssl/hosting/wildcard.villeparisis.fr.key" not in paths


def test_proxy_tls_source_installs_key_then_certificate(prod, tls_dir):
    d = proxy(role_ctx(prod, "proxy"))
    files = [r for r in d.resources if isinstance(r, File)]
    paths = [f.path for f in files]
    key = paths.index("/etc/ssl/hosting/wildcard.villeparisis.fr.key")
    assert key < paths.index("/etc/ssl/hosting/wildcard.villeparisis.fr.pem") < paths.index(
        "/etc/nginx/nginx.conf")
    assert files[key].mode == 0o600 and files[key].sensitive


def test_proxy_tls_source_not_covering_sites_fails(preprod, tls_dir):
    with pytest.raises(ValueError, match="does not cover www.preprod.villeparisis.fr"):
        proxy(role_ctx(preprod, "proxy"))


def test_proxy_converged_host_gets_no_action(prod, tls_dir):
    d = proxy(role_ctx(prod, "proxy"))
    assert decide(d.resources, d.handlers, converged(d)).is_noop


def test_proxy_nginx_listening_elsewhere_than_configured_restarts_it(prod, tls_dir):
    d = proxy(role_ctx(prod, "proxy"))
    facts = converged(d)
    facts.commands["nginx-listen"] = CommandFact(0, "0.0.0.0:80\n[::]:80\n")
    plan = decide(d.resources, d.handlers, facts)
    assert [h.name for h in plan.handlers] == ["restart-nginx"]
    assert [a.key for a in plan.actions] == ["probe:nginx-listen"]
