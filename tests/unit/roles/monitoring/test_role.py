"""The monitoring roles' desired state (issue 13, R-HOST-4): what runs where, what it listens
on, each config validated on the host by its own tool, and no action on a converged host."""
from __future__ import annotations

from engine.decide import decide
from engine.resources import File, Packages, Service
from roles.monitoring.role import node_exporter, ops_monitoring
from roles.registry import ROLES
from tests.unit.roles.converged import converged, role_ctx


def _files(d) -> dict[str, File]:
    return {r.path: r for r in d.resources if isinstance(r, File)}


def _packages(d) -> set[str]:
    return {n for r in d.resources if isinstance(r, Packages) for n in r.names}


def test_registry_every_role_gets_node_exporter_only_ops_the_rest():
    for role, roles in ROLES.items():
        assert node_exporter in roles, role
        assert (ops_monitoring in roles) == (role == "ops"), role


def test_node_exporter_listens_on_private_address_with_systemd_and_textfiles(prod):
    for host in prod.hosts:
        d = node_exporter(role_ctx(prod, host.name))
        args = _files(d)["/etc/default/prometheus-node-exporter"].data.decode()
        assert f"--web.listen-address={host.private_ip}:9100 " in args
        assert "--collector.systemd" in args
        assert "--collector.textfile.directory=/var/lib/prometheus/node-exporter" in args
        assert _packages(d) == {"prometheus-node-exporter"}


def test_ops_monitoring_installs_prometheus_alertmanager_blackbox(prod):
    d = ops_monitoring(role_ctx(prod, "ops"))
    assert {"prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"} <= \
        _packages(d)
    units = {r.unit for r in d.resources if isinstance(r, Service) and r.running}
    assert {"prometheus.service", "prometheus-alertmanager.service",
            "prometheus-blackbox-exporter.service", "hosting-incidents.service"} <= units


def test_ops_monitoring_configs_validated_on_host_by_their_tools(prod):
    files = _files(ops_monitoring(role_ctx(prod, "ops")))
    assert files["/etc/prometheus/prometheus.yml"].validate == "promtool check config {}"
    assert files["/etc/prometheus/rules/hosting.yml"].validate == "promtool check rules {}"
    assert files["/etc/prometheus/alertmanager.yml"].validate == "amtool check-config {}"
    assert files["/etc/prometheus/blackbox.yml"].validate == \
        "prometheus-blackbox-exporter --config.check --config.file={}"


def test_ops_monitoring_rules_written_before_config_that_loads_them(prod):
    paths = [r.path for r in ops_monitoring(role_ctx(prod, "ops")).resources
             if isinstance(r, File)]
    assert paths.index("/etc/prometheus/rules/hosting.yml") < \
        paths.index("/etc/prometheus/prometheus.yml")


def test_ops_monitoring_daemons_listen_on_loopback_only(prod):
    files = _files(ops_monitoring(role_ctx(prod, "ops")))
    for path, port in (("/etc/default/prometheus", 9090),
                       ("/etc/default/prometheus-alertmanager", 9093),
                       ("/etc/default/prometheus-blackbox-exporter", 9115)):
        assert f"--web.listen-address=127.0.0.1:{port}" in files[path].data.decode(), path
    assert "--cluster.listen-address= " in \
        files["/etc/default/prometheus-alertmanager"].data.decode()


def test_ops_monitoring_alertmanager_config_not_world_readable(prod):
    f = _files(ops_monitoring(role_ctx(prod, "ops")))["/etc/prometheus/alertmanager.yml"]
    assert (f.mode, f.owner, f.group) == (0o640, "root", "prometheus")


def test_ops_monitoring_lab_ca_trusted_by_blackbox(prod, tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(type(prod), "tls_client_ca", property(lambda self: ca))
    files = _files(ops_monitoring(role_ctx(prod, "ops")))
    assert files["/etc/prometheus/blackbox-ca.pem"].data == ca.read_bytes()
    assert "ca_file: /etc/prometheus/blackbox-ca.pem" in \
        files["/etc/prometheus/blackbox.yml"].data.decode()


def test_ops_monitoring_converged_host_gets_no_action(prod):
    d = ops_monitoring(role_ctx(prod, "ops")) + node_exporter(role_ctx(prod, "ops"))
    assert decide(d.resources, d.handlers, converged(d)).is_noop


def test_ops_monitoring_changed_rules_reload_prometheus_only(prod):
    d = ops_monitoring(role_ctx(prod, "ops"))
    facts = converged(d)
    old = facts.paths["/etc/prometheus/rules/hosting.yml"]
    facts.paths["/etc/prometheus/rules/hosting.yml"] = type(old)(
        True, "file", old.mode, old.owner, old.group, "0" * 64, b"groups: []\n")
    plan = decide(d.resources, d.handlers, facts)
    assert [h.name for h in plan.handlers] == ["reload-prometheus"]
