"""Every monitoring config rendered from the real prod and preprod inventories passes its own
tool (issue 13): promtool check config / check rules, amtool check-config, the blackbox
exporter's --config.check; and says what the issue asks (private scrapes, probes per site)."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from engine.inventory import Inventory
from model.types import Email, Monitoring
from roles.monitoring import config as c
from roles.monitoring import incidents
from roles.monitoring import render as r
from tests.unit.roles.monitoring.monitoring_helpers import run_tool, tool

EMAIL = Email(("ops@villeparisis.fr",), "alerts@villeparisis.fr", "ssl0.ovh.net:587",
              "alerts@villeparisis.fr")


@pytest.fixture(params=["prod_doc", "preprod_doc"])
def inv(request) -> Inventory:
    return Inventory.from_doc(request.getfixturevalue(request.param))


def test_prometheus_yml_rendered_passes_promtool_check_config(inv, tmp_path):
    promtool = tool("promtool")
    m = c.monitoring(inv)
    (tmp_path / "rules.yml").write_text(r.rules_yml(m))
    conf = tmp_path / "prometheus.yml"
    conf.write_text(r.prometheus_yml(inv, m).replace(r.RULES_PATH, str(tmp_path / "rules.yml")))
    out = run_tool([promtool, "check", "config", str(conf)])
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("lab", [False, True])
def test_rules_yml_rendered_passes_promtool_check_rules(prod_doc, tmp_path, lab):
    promtool = tool("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(r.rules_yml(c.monitoring(Inventory.from_doc(prod_doc)), lab))
    out = run_tool([promtool, "check", "rules", str(rules)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 21 rules found" in out.stdout


@pytest.mark.parametrize("email", [None, EMAIL], ids=["webhook-only", "with-email"])
def test_alertmanager_yml_rendered_passes_amtool_check_config(prod_doc, tmp_path, email):
    amtool = tool("amtool")
    m = dataclasses.replace(c.monitoring(Inventory.from_doc(prod_doc)), email=email)
    conf = tmp_path / "alertmanager.yml"
    conf.write_text(r.alertmanager_yml(m))
    out = run_tool([amtool, "check-config", str(conf)])
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("ca_file", [None, "/etc/prometheus/blackbox-ca.pem"])
def test_blackbox_yml_rendered_passes_config_check(inv, tmp_path, ca_file):
    exporter = tool("prometheus-blackbox-exporter")
    conf = tmp_path / "blackbox.yml"
    text = r.blackbox_yml(inv, c.monitoring(inv), ca_file)
    if ca_file:  # the check opens the CA file: point it at one that exists here
        ca = tmp_path / "ca.pem"
        ca.write_text("")
        text = text.replace(ca_file, str(ca))
    conf.write_text(text)
    out = run_tool([exporter, "--config.check", f"--config.file={conf}"])
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_yml_scrapes_every_host_on_private_address(prod_doc):
    inv = Inventory.from_doc(prod_doc)
    conf = yaml.safe_load(r.prometheus_yml(inv, c.monitoring(inv)))
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    node = [t["targets"][0] for t in jobs["node"]["static_configs"]]
    assert node == [f"{h.private_ip}:9100" for h in inv.hosts]
    ssh = [t["targets"][0] for t in jobs["ssh"]["static_configs"]]
    assert ssh == [f"{h.private_ip}:22" for h in inv.hosts]
    public = {h.public_ip for h in inv.hosts if h.public_ip}
    assert not any(a.split(":")[0] in public for a in node + ssh)


def test_prometheus_yml_probes_each_site_on_its_public_ip_three_ways(prod_doc):
    inv = Inventory.from_doc(prod_doc)
    conf = yaml.safe_load(r.prometheus_yml(inv, c.monitoring(inv)))
    probes = [j for j in conf["scrape_configs"] if j["job_name"].startswith("site-")]
    for site in prod_doc["sites"]:
        mine = {j["static_configs"][0]["labels"]["check"]: j["params"]["target"][0]
                for j in probes if j["static_configs"][0]["labels"]["site"] == site["name"]}
        ip = site["public_ip"]
        assert mine == {"https": f"https://{ip}/", "https-any": f"https://{ip}/",
                        "redirect": f"http://{ip}/"}


def test_blackbox_yml_site_modules_send_real_name_as_host_and_sni(prod_doc):
    inv = Inventory.from_doc(prod_doc)
    mods = yaml.safe_load(r.blackbox_yml(inv, c.monitoring(inv), None))["modules"]
    for site in prod_doc["sites"]:
        strict = mods[f"https_{site['name']}"]["http"]
        assert strict["headers"]["Host"] == site["domain"]
        assert strict["tls_config"] == {"server_name": site["domain"]}
        assert strict["valid_status_codes"] == [200]
        assert strict["fail_if_body_not_matches_regexp"] == ["Drupal"]
        assert mods[f"https_any_{site['name']}"]["http"]["tls_config"]["insecure_skip_verify"]
        redirect = mods[f"redirect_{site['name']}"]["http"]
        assert redirect["fail_if_header_not_matches"][0]["header"] == "Location"


def test_blackbox_yml_marker_site_placeholder_replaced(prod_doc):
    inv = Inventory.from_doc(prod_doc)
    m = dataclasses.replace(c.monitoring(inv), body_marker='"site": ?"{site}"')
    mods = yaml.safe_load(r.blackbox_yml(inv, m, None))["modules"]
    assert mods["https_villeparisis"]["http"]["fail_if_body_not_matches_regexp"] == \
        ['"site": ?"villeparisis"']


def test_alertmanager_yml_webhook_goes_to_incident_receiver(prod_doc):
    m = c.monitoring(Inventory.from_doc(prod_doc))
    conf = yaml.safe_load(r.alertmanager_yml(m))
    (receiver,) = conf["receivers"]
    assert receiver["webhook_configs"] == [{"url": incidents.WEBHOOK_URL, "send_resolved": True}]
    assert incidents.WEBHOOK_URL == "http://127.0.0.1:9099/alertmanager"
    assert "email_configs" not in receiver


def test_alertmanager_yml_email_password_only_as_file(prod_doc):
    m = dataclasses.replace(c.monitoring(Inventory.from_doc(prod_doc)), email=EMAIL)
    conf = yaml.safe_load(r.alertmanager_yml(m))
    assert conf["global"]["smtp_auth_password_file"] == c.SMTP_PASSWORD_FILE
    assert "smtp_auth_password" not in conf["global"]
    assert conf["receivers"][0]["email_configs"] == [{"to": "ops@villeparisis.fr",
                                                      "send_resolved": True}]


def test_rules_yml_every_alert_of_the_issue_with_runbook(prod_doc):
    rules = yaml.safe_load(r.rules_yml(c.monitoring(Inventory.from_doc(prod_doc))))
    alerts = {rule["alert"]: rule for g in rules["groups"] for rule in g["rules"]}
    assert set(alerts) == {"SiteDown", "SiteSlow", "CertExpiring", "CertInvalid", "BackupStale",
                           "BackupFailed", "RepositoryCheckFailed", "DiskWillFillIn24h",
                           "DiskAlmostFull", "HostDown", "UnitFailed", "SecurityUpdatesPending",
                           "TargetMissing", "UnattendedUpgradesFailed",
                           # issue 19: what a compromised web host does to its backups
                           "BackupSuspectSnapshots", "BackupUnexpectedKey",
                           "BackupQuotaNearlyFull",
                           # a storage rotation that failed; a site whose backups never reported
                           "BackupRotationFailed", "BackupNeverReported",
                           # issue 17: a reboot overdue, a packaged file changed
                           "RebootRequired", "IntegrityChanged"}
    assert all(a["annotations"]["runbook"] and a["annotations"]["summary"]
               for a in alerts.values())


def test_rules_yml_thresholds_from_model(prod_doc):
    m = dataclasses.replace(c.monitoring(Inventory.from_doc(prod_doc)), cert_expiry_days=30,
                            site_down_after_seconds=45, backup_stale_b_hours=200)
    alerts = {rule["alert"]: rule for g in yaml.safe_load(r.rules_yml(m))["groups"]
              for rule in g["rules"]}
    assert alerts["CertExpiring"]["expr"].endswith("< 30")
    assert alerts["SiteDown"]["for"] == "45s"
    assert "> 720000" in alerts["BackupStale"]["expr"]


def test_daemon_args_listen_on_loopback_or_private_only():
    assert "--web.listen-address=127.0.0.1:9090" in r.prometheus_args(Monitoring())
    assert "--storage.tsdb.retention.time=30d" in r.prometheus_args(Monitoring())
    assert "--web.listen-address=127.0.0.1:9093" in r.alertmanager_args()
    assert "--cluster.listen-address= " in r.alertmanager_args()
    assert "--web.listen-address=127.0.0.1:9115" in r.blackbox_args()
    assert "--web.listen-address=10.20.0.100:9100" in r.node_exporter_args("10.20.0.100")


def test_inventory_textfile_lists_every_host(prod_doc):
    inv = Inventory.from_doc(prod_doc)
    text = r.inventory_textfile(inv)
    for h in inv.hosts:
        assert f'hosting_inventory_host{{inventory_host="{h.name}",inventory_role="{h.role}"}} 1' \
            in text


def test_inventory_textfile_lists_every_site_for_backup_never_reported(prod_doc):
    inv = Inventory.from_doc(prod_doc)
    text = r.inventory_textfile(inv)
    names = [s["name"] for s in prod_doc["sites"]]
    assert names
    for name in names:
        assert f'hosting_inventory_site{{inventory_site="{name}"}} 1' in text
    assert text.count("hosting_inventory_site{") == len(names)
