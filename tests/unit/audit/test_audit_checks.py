"""The checks on plain data: what the collectors would have read from a platform."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit import checks as c
from audit.checks import Context, Fact
from audit.clauses import firewall
from audit.collect import junit_cases, krl_serials, serial_set, sshd_settings

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).isoformat()


def ctx(prod, **facts: Fact) -> Context:
    return Context(dict(facts), prod, NOW)


def ruleset(name: str) -> list[dict]:
    return json.loads((HERE / f"nft_prod_{name}.json").read_text())["nftables"]


def opened(rules: list[dict], rule: dict) -> list[dict]:
    return [*rules, {"rule": {"family": "inet", "table": "filter", "chain": "input",
                              "expr": [*rule, {"accept": None}]}}]


DPORT_8080 = [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                         "right": 8080}}]


def test_firewall_deployed_rulesets_pass(prod) -> None:
    hosts = {"backup-a": {"nft": ruleset("backup_a")},
             "web-villeparisis": {"nft": ruleset("web_villeparisis")}}
    ev = firewall(ctx(prod, hosts=Fact(True, hosts)))
    assert [e.status for e in ev] == ["pass", "pass"], [e.saw for e in ev]
    assert "tcp/22, tcp/9100" in ev[0].saw


def test_firewall_port_opened_by_hand_fails_naming_it(prod) -> None:
    hosts = {"backup-a": {"nft": opened(ruleset("backup_a"), DPORT_8080)}}
    ev = firewall(ctx(prod, hosts=Fact(True, hosts)))
    assert ev[0].status == "fail" and "tcp [8080] from anywhere" in ev[0].saw


def test_firewall_ssh_from_a_wider_source_fails(prod) -> None:
    rule = [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"prefix": {"addr": "10.20.0.0", "len": 24}}}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                       "right": {"set": [22]}}}]
    hosts = {"web-villeparisis": {"nft": opened(ruleset("web_villeparisis"), rule)}}
    assert firewall(ctx(prod, hosts=Fact(True, hosts)))[0].status == "fail"


def test_firewall_accept_new_connections_without_port_fails(prod) -> None:
    rule = [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["new"]}}]
    hosts = {"backup-a": {"nft": opened(ruleset("backup_a"), rule)}}
    assert firewall(ctx(prod, hosts=Fact(True, hosts)))[0].status == "fail"


def test_firewall_policy_accept_fails(prod) -> None:
    rs = ruleset("backup_a")
    for x in rs:
        if "chain" in x and x["chain"].get("hook") == "input":
            x["chain"]["policy"] = "accept"
    ev = firewall(ctx(prod, hosts=Fact(True, {"backup-a": {"nft": rs}})))
    assert ev[0].status == "fail" and "policy accept" in ev[0].saw


def test_firewall_host_unreachable_manual(prod) -> None:
    ev = firewall(ctx(prod, hosts=Fact(True, {"backup-a": {"error": "timed out"}})))
    assert [(e.status, e.saw) for e in ev] == [("manual", "backup-a unreachable: timed out")]


MODEL_GRANTS = ["GRANT USAGE ON *.* TO `villeparisis`@`localhost` IDENTIFIED BY PASSWORD 'x'",
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE "
                "TEMPORARY TABLES, LOCK TABLES ON `villeparisis`.* TO `villeparisis`@`localhost`"]
DBS = {"villeparisis": "villeparisis", "participation": "participation"}


def test_grant_problems_model_grants_none() -> None:
    assert c.grant_problems(("villeparisis", "localhost"), MODEL_GRANTS, DBS) == []
    assert c.grant_problems(("root", "localhost"), ["GRANT ALL PRIVILEGES ON *.*"], DBS) == []


@pytest.mark.parametrize(("extra", "expected"), [
    ("GRANT SELECT ON `mysql`.* TO `villeparisis`@`localhost`", "outside its database on mysql.*"),
    ("GRANT FILE ON *.* TO `villeparisis`@`localhost`", "global FILE"),
    ("GRANT ALL PRIVILEGES ON `villeparisis`.* TO `villeparisis`@`localhost`",
     "ALL PRIVILEGES beyond the model"),
])
def test_grant_problems_broader_than_model_flagged(extra: str, expected: str) -> None:
    problems = c.grant_problems(("villeparisis", "localhost"), [*MODEL_GRANTS, extra], DBS)
    assert any(expected in p for p in problems), problems


def test_grant_problems_unknown_account_flagged() -> None:
    assert c.grant_problems(("admin", "%"), [], DBS) == ["admin@%: an account the model does "
                                                         "not have"]


def test_db_grants_row_lists_accounts_and_fails_on_extra(prod) -> None:
    grants = [{"account": ["villeparisis", "localhost"],
               "grants": [*MODEL_GRANTS, "GRANT SELECT ON `participation`.* TO x"]}]
    ev = c.db_grants(ctx(prod, hosts=Fact(True, {"web-villeparisis": {"grants": grants}})))
    assert ev[0].status == "fail" and "participation.*" in ev[0].saw
    assert "villeparisis@localhost" in ev[0].excerpt


def sshd_host(prod, principals: list[str]) -> dict:
    return {"sshd": {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
                     "authorizedkeysfile": "none", "permitrootlogin": "no",
                     "revokedkeys": "/etc/ssh/revoked_keys.krl"},
            "user_ca": prod.user_ca_public_key, "principals": principals,
            "krl_summary": "1 revoked serial range(s)"}


def test_sshd_access_model_principals_pass(prod) -> None:
    ev = c.sshd_access(ctx(prod, hosts=Fact(True, {"ops": sshd_host(prod, ["ci-deploy",
                                                                            "sysadmin"])})))
    assert ev[0].status == "pass" and "principals ci-deploy, sysadmin" in ev[0].saw


def test_sshd_access_extra_principal_or_plain_keys_fail(prod) -> None:
    h = sshd_host(prod, ["sysadmin", "ci-deploy", "intern"])
    h["sshd"]["authorizedkeysfile"] = ".ssh/authorized_keys"
    ev = c.sshd_access(ctx(prod, hosts=Fact(True, {"ops": h})))
    assert ev[0].status == "fail"
    assert "authorizedkeysfile" in ev[0].saw and "'intern'" in ev[0].saw


def test_ca_register_valid_certificates_listed_revoked_left_out(prod) -> None:
    later = int((NOW + timedelta(hours=4)).timestamp())
    data = {"user": [{"serial": 1, "key_id": "a@b", "principals": ["sysadmin"],
                      "valid_before": later}, {"serial": 2, "key_id": "c@d",
                                               "principals": ["sysadmin"],
                                               "valid_before": later}],
            "revoked_serials": [2]}
    ev = c.ca_register(ctx(prod, ca=Fact(True, data)))
    assert ev[0].status == "pass" and "2 user certificate(s) issued, 1 valid now" in ev[0].saw
    assert "serial 1 a@b" in ev[0].excerpt and "c@d" not in ev[0].excerpt


def snaps(*items: tuple[str, list[str]]) -> list[dict]:
    return [{"id": f"{i:064x}", "short_id": f"{i:08x}", "time": t, "tags": tags,
             "paths": ["/x"]} for i, (t, tags) in enumerate(items)]


def backups(prod, local=(), a=(), b=(), **extra) -> Context:
    per = {"local": {"snapshots": list(local), **extra}, "a": {"snapshots": list(a)},
           "b": {"snapshots": list(b)}}
    return ctx(prod, backups=Fact(True, {"villeparisis": per}))


def test_oldest_snapshot_over_365_days_fails(prod) -> None:
    ev = c.oldest(backups(prod, local=snaps((ago(days=400), ["db"]), (ago(hours=2), ["db"])),
                          a=snaps((ago(days=300), ["db"]))))
    assert [e.status for e in ev] == ["fail", "pass"]
    assert "villeparisis local: oldest snapshot 400.0 days old" in ev[0].saw


def test_newest_local_snapshot_older_than_26_hours_fails(prod) -> None:
    assert c.newest(backups(prod, local=snaps((ago(hours=30), []))), "local")[0].status == "fail"
    assert c.newest(backups(prod, local=snaps((ago(hours=3), []))), "local")[0].status == "pass"
    assert c.newest(backups(prod, b=snaps((ago(days=7), []))), "b")[0].status == "pass"


def test_newest_repository_unreadable_fails_naming_it(prod) -> None:
    data = {"villeparisis": {"a": {"host": "backup-a", "error": "exit 1: wrong password"}}}
    ev = c.newest(ctx(prod, backups=Fact(True, data)), "a")
    assert ev[0].status == "fail" and "wrong password" in ev[0].saw


def test_weekly_older_than_35_days_fails_monthly_kept(prod) -> None:
    ok = snaps((ago(days=60), ["weekly", "monthly"]), (ago(days=20), ["weekly"]))
    assert c.weekly(backups(prod, b=ok))[0].status == "pass"
    late = snaps((ago(days=40), ["weekly"]))
    assert c.weekly(backups(prod, b=late))[0].status == "fail"


def test_monthly_first_backup_of_the_month_is_the_monthly(prod) -> None:
    good = snaps(("2026-11-01T00:30:00+01:00", ["monthly", "db"]),
                 ("2026-11-01T00:31:00+01:00", ["monthly", "files"]),
                 ("2026-11-08T00:30:00+01:00", ["weekly", "db"]))
    assert c.monthly(backups(prod, b=good))[0].status == "pass"
    # 30 Nov 23:30 UTC is 1 Dec 00:30 in Paris: December's first, before the one tagged.
    bad = snaps(("2026-11-30T23:30:00+00:00", ["weekly", "db"]),
                ("2026-12-06T00:30:00+01:00", ["monthly", "db"]))
    ev = c.monthly(backups(prod, b=bad))
    assert ev[0].status == "fail" and "2026-12: 1 snapshot(s) before the monthly one" in ev[0].saw


def test_no_logs_log_file_in_the_backup_fails(prod) -> None:
    local = snaps((ago(hours=1), ["files"]))
    assert c.no_logs(backups(prod, local=local, listing=["/srv/a/x.php"]))[0].status == "pass"
    ev = c.no_logs(backups(prod, local=local, listing=["/srv/a/x.php", "/var/log/nginx/a"]))
    assert ev[0].status == "fail" and "/var/log/nginx/a" in ev[0].excerpt


def test_content_files_snapshot_lacking_a_path_fails(prod) -> None:
    local = snaps((ago(hours=1), ["db"]), (ago(hours=1), ["files"]))
    ev = c.content(backups(prod, local=local, expect_paths=["/x", "/etc/hosting"],
                           listing=["/srv/villeparisis/private/a"],
                           private_files="/srv/villeparisis/private"))
    assert ev[0].status == "fail" and "lacks /etc/hosting" in ev[0].saw


def test_tls_certificate_expiring_within_21_days_fails(prod) -> None:
    probe = {"name": "villeparisis.fr", "ip": "198.51.100.17", "http": 200,
             "sans": ["*.villeparisis.fr", "villeparisis.fr"],
             "not_after": (NOW + timedelta(days=10)).timestamp()}
    ev = c.tls_certificate(ctx(prod, tls=Fact(True, [probe])))
    assert ev[0].status == "fail" and "10 days left" in ev[0].saw
    probe["not_after"] = (NOW + timedelta(days=80)).timestamp()
    assert c.tls_certificate(ctx(prod, tls=Fact(True, [probe])))[0].status == "pass"


def test_monitoring_absent_manual_with_reason(prod) -> None:
    ev = c.monitoring(ctx(prod, monitoring=Fact(False, error="curl: connection refused")))
    assert ev[0].status == "manual" and "connection refused" in ev[0].saw


def test_monitoring_alert_firing_fails(prod) -> None:
    data = {"targets": 9, "down": [], "rules": list(c.MONITORED),
            "firing": [{"alert": "BackupStale", "where": "villeparisis"}]}
    ev = c.monitoring(ctx(prod, monitoring=Fact(True, data)))
    assert ev[0].status == "fail" and "BackupStale villeparisis" in ev[0].saw


def test_restores_none_recorded_manual_last_failed_fails(prod) -> None:
    ev = c.restores(ctx(prod, restores=Fact(True, {"villeparisis": []})))
    assert ev[0].status == "manual"
    recs = [{"time": "t1", "result": "ok"}, {"time": "t2", "result": "failed", "errors": ["x"]}]
    assert c.restores(ctx(prod, restores=Fact(True, {"v": recs})))[0].status == "fail"


def test_verify_cases_failed_test_fails_with_its_message(prod) -> None:
    cases = [{"module": "test_sshd", "name": "test_sshd_06_no_root_login[ops]",
              "outcome": "failed", "message": "assert 'yes' == 'no'"},
             {"module": "test_sshd", "name": "test_sshd_07_port_22[ops]", "outcome": "passed",
              "message": ""}]
    ev = c.verify_cases(ctx(prod, verify=Fact(True, cases)), "test_sshd")
    assert ev[0].status == "fail" and "1 passed, 1 failed" in ev[0].saw
    assert "no_root_login[ops]: assert 'yes' == 'no'" in ev[0].excerpt


def test_regions_prod_french_pass(prod) -> None:
    assert c.regions(ctx(prod))[0].status == "pass"


def test_junit_cases_outcomes_read() -> None:
    xml = ('<testsuites><testsuite><testcase classname="tests.verify.test_sshd" name="a[ops]"/>'
           '<testcase classname="tests.verify.test_nginx" name="b"><failure message="boom"/>'
           '</testcase><testcase classname="tests.verify.test_nginx" name="c"><skipped '
           'message="no"/></testcase></testsuite></testsuites>')
    assert [(x["module"], x["outcome"], x["message"]) for x in junit_cases(xml)] == [
        ("test_sshd", "passed", ""), ("test_nginx", "failed", "boom"),
        ("test_nginx", "skipped", "no")]


def test_krl_serials_listing_parsed_with_ranges() -> None:
    listing = "# KRL version 0\n# CA key ssh-ed25519 SHA256:x\nserial: 7\nserial: 9-11\n"
    assert serial_set(krl_serials(listing)) == {7, 9, 10, 11}


def test_sshd_settings_first_value_wins() -> None:
    assert sshd_settings("Port 22\nport 2222\nPasswordAuthentication no\n") == {
        "port": "22", "passwordauthentication": "no"}


def test_redact_grant_password_hash_removed_grant_option_kept() -> None:
    from audit.collect import redact

    line = ("GRANT USAGE ON *.* TO `villeparisis`@`localhost` IDENTIFIED BY PASSWORD "
            "'*AB12CD' WITH GRANT OPTION")
    assert redact(line) == ("GRANT USAGE ON *.* TO `villeparisis`@`localhost` IDENTIFIED BY "
                            "PASSWORD '(redacted)' WITH GRANT OPTION")
    plain = "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA unix_socket"
    assert redact(plain) == plain


def test_php_version_from_dpkg_listing() -> None:
    from audit.collect import php_version

    assert php_version("php-fpm \nphp8.4-fpm 8.4.11-1\n") == "8.4.11"
    assert php_version("") == ""


def test_ca_register_backup_principals_known_others_fail(prod) -> None:
    later = int((NOW + timedelta(days=80)).timestamp())
    cert = {"serial": 4, "key_id": "prod-backup-villeparisis@web-villeparisis",
            "principals": ["backup-villeparisis"], "valid_before": later}
    assert c.ca_register(ctx(prod, ca=Fact(True, {"user": [cert]})))[0].status == "pass"
    cert["principals"] = ["root"]
    ev = c.ca_register(ctx(prod, ca=Fact(True, {"user": [cert]})))
    assert ev[0].status == "fail" and "serial 4" in ev[0].saw


def test_ca_register_acme_deploy_principal_known(prod) -> None:
    # the ACME deploy hook's certificate (roles/acme): accepted on the proxy only, behind
    # its installer; a leftover one after ACME was switched off opens nothing
    later = int((NOW + timedelta(days=80)).timestamp())
    cert = {"serial": 2, "key_id": "acme-deploy@ops", "principals": ["acme-deploy"],
            "valid_before": later}
    assert c.ca_register(ctx(prod, ca=Fact(True, {"user": [cert]})))[0].status == "pass"
    cert["principals"] = ["acme-deploy", "sysadmin2"]
    assert c.ca_register(ctx(prod, ca=Fact(True, {"user": [cert]})))[0].status == "fail"


def test_content_empty_private_directory_itself_backed_up_passes(prod) -> None:
    local = snaps((ago(hours=1), ["db"]), (ago(hours=1), ["files"]))
    ev = c.content(backups(prod, local=local, expect_paths=["/x"],
                           listing=["/x", "/srv/villeparisis/private"],
                           private_files="/srv/villeparisis/private"))
    assert ev[0].status == "pass", ev[0].saw


def test_who_logs_in_hosts_certificates_and_databases_listed(prod) -> None:
    later = int((NOW + timedelta(hours=4)).timestamp())
    hosts = {"ops": sshd_host(prod, ["ci-deploy", "sysadmin"]) | {"krl_serials": ["7"]},
             "backup-a": sshd_host(prod, ["sysadmin"]) | {"storage": {"principals": {
                 "villeparisis": 'restrict,command="..." backup-villeparisis'}}},
             "web-villeparisis": sshd_host(prod, ["sysadmin"]) | {"grants": [
                 {"account": ["villeparisis", "localhost"], "grants": MODEL_GRANTS[1:]}]},
             "proxy": {"error": "timed out"}}
    ca_data = {"user": [{"serial": 1, "key_id": "a@b", "principals": ["sysadmin"],
                         "valid_before": later}], "revoked_serials": []}
    who = c.who_logs_in(ctx(prod, hosts=Fact(True, hosts), ca=Fact(True, ca_data)))
    assert who["hosts"]["ops"]["principals"] == ["ci-deploy", "sysadmin"]
    assert who["hosts"]["ops"]["krl_serials"] == ["7"]
    assert who["hosts"]["backup-a"]["principals"] == [
        "sysadmin", "backup-villeparisis (backup of villeparisis, forced command)"]
    assert who["hosts"]["proxy"] == {"role": "proxy", "error": "timed out"}
    assert who["databases"]["web-villeparisis"][0]["account"] == "villeparisis@localhost"
    assert [x["serial"] for x in who["certificates"]] == [1]


def test_alert_rules_missing_rule_fails_absent_monitoring_manual(prod) -> None:
    data = {"targets": 9, "down": [], "firing": [], "rules": ["CertInvalid"]}
    ev = c.alert_rules(ctx(prod, monitoring=Fact(True, data)), ("CertExpiring", "CertInvalid"),
                       "certificate monitored")
    assert ev[0].status == "fail" and "no alert rule CertExpiring loaded" in ev[0].saw
    data["rules"].append("CertExpiring")
    assert c.alert_rules(ctx(prod, monitoring=Fact(True, data)), ("CertExpiring",),
                         "x")[0].status == "pass"
    absent = c.alert_rules(ctx(prod, monitoring=Fact(False, error="refused")), ("X",), "x")
    assert absent[0].status == "manual"
