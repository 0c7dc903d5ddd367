"""tasks/acme_tasks.py: the access-rules JSON, the credentials read from stdin (checked, never
echoed), the ops deploy certificate's checks and certbot's argv (issue 14)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from roles.acme.config import Acme, CertSet, access_rules
from sshtrust import ca
from tasks import acme_tasks as t

ZONE = "villeparisis.fr"
GOOD = "application_key=ak1\napplication_secret=as1\nconsumer_key=ck1\n"


def test_rules_document_is_credential_request_for_zone():
    doc = json.loads(t.rules_document(ZONE))
    assert doc["accessRules"] == access_rules(ZONE)


def test_parse_credentials_complete_returns_fields():
    assert t.parse_credentials("# comment\n" + GOOD) == {
        "application_key": "ak1", "application_secret": "as1", "consumer_key": "ck1"}


def test_parse_credentials_missing_field_names_it():
    with pytest.raises(t.AcmeError, match="consumer_key missing"):
        t.parse_credentials("application_key=a\napplication_secret=b\n")


def test_parse_credentials_bad_value_names_field_never_value():
    with pytest.raises(t.AcmeError) as err:
        t.parse_credentials(GOOD.replace("as1", "s3cr$t;rm"))
    assert "application_secret" in str(err.value) and "s3cr" not in str(err.value)


def test_credentials_ini_has_endpoint_and_three_keys():
    ini = t.credentials_ini("ovh-eu", t.parse_credentials(GOOD))
    assert "dns_ovh_endpoint = ovh-eu\n" in ini
    assert "dns_ovh_consumer_key = ck1\n" in ini and "dns_ovh_application_secret = as1\n" in ini


def test_write_credentials_argv_never_holds_a_secret():
    argv = " ".join(t.write_credentials_argv())
    assert "0600" in argv and "ak1" not in argv and "cat >" in argv


def two_sets() -> Acme:
    return Acme(True, "https://acme.example/dir", "a@b.fr",
                (CertSet("participation.villeparisis.fr", ("participation.villeparisis.fr",)),
                 CertSet(ZONE, ("*.villeparisis.fr", ZONE))), ZONE)


def test_issue_argv_names_lineage_and_every_name():
    argv = t.issue_argv(CertSet(ZONE, ("*.villeparisis.fr", ZONE)))
    assert argv[:4] == ["certbot", "certonly", "--cert-name", ZONE]
    assert argv[-4:] == ["-d", "*.villeparisis.fr", "-d", ZONE]


def test_issue_all_two_sets_one_certonly_each_in_order():
    seen: list[list[str]] = []
    t.issue_all(two_sets(), lambda argv, what: seen.append(argv) or "")
    assert [a[3] for a in seen] == ["participation.villeparisis.fr", ZONE]


def test_issue_all_first_set_fails_second_still_tried_error_names_both():
    seen: list[str] = []

    def run(argv: list[str], what: str) -> str:
        seen.append(argv[3])
        raise t.AcmeError(f"{what} failed")
    with pytest.raises(t.AcmeError, match=r"participation.*; certbot certonly \(villeparisis"):
        t.issue_all(two_sets(), run)
    assert seen == ["participation.villeparisis.fr", ZONE]


def test_deploy_argv_runs_hook_on_current_lineage():
    argv = t.deploy_argv(CertSet(ZONE, (ZONE,)))
    assert argv[-3:] == ["deploy", "--lineage", f"/etc/letsencrypt/live/{ZONE}"]
    assert argv[0] == "/usr/bin/python3" and argv[1] == "-I"


def test_renew_argv_force_adds_force_renewal():
    acme = two_sets()
    assert "--force-renewal" in t.renew_argv(acme, True)
    assert "--force-renewal" not in t.renew_argv(acme, False)


def test_renew_argv_no_lineage_renews_every_one_named_lineage_only_that():
    acme = two_sets()
    assert "--cert-name" not in t.renew_argv(acme, False)
    argv = t.renew_argv(acme, False, ZONE)
    assert argv[argv.index("--cert-name") + 1] == ZONE


def test_renew_argv_unknown_lineage_raises_naming_the_sets():
    with pytest.raises(t.AcmeError, match="no certificate set named 'x'.*participation"):
        t.renew_argv(two_sets(), False, "x")


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[Path, str, str, tuple[str, ...]]:
    d = tmp_path_factory.mktemp("acmeca")
    ca_key = d / "user_ca"
    ca.create_ca(ca_key, "test user CA")
    key = d / "id_ed25519"
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    options = ("force-command=sudo -n /usr/bin/python3 -I /x/install.py --cert a --key b",
               "source-address=10.0.0.2/32")
    cert = ca.sign_user_key(ca_key, Path(f"{key}.pub"), "k", ["acme-deploy"],
                            ttl=t.CERT_TTL, options=options)
    return d, Path(f"{key}.pub").read_text(), cert.read_text(), options


def test_needs_new_cert_current_returns_empty(signed):
    _d, pub, cert, options = signed
    assert t.needs_new_cert(cert, pub, options, datetime.now(UTC)) == ""


def test_needs_new_cert_other_forced_command_resigns(signed):
    _d, pub, cert, options = signed
    assert t.needs_new_cert(cert, pub, ("force-command=other", options[1]),
                            datetime.now(UTC)) == "other restrictions"


def test_needs_new_cert_near_end_resigns(signed):
    _d, pub, cert, options = signed
    later = datetime.now(UTC) + t.CERT_TTL - timedelta(days=10)
    assert "expires within" in t.needs_new_cert(cert, pub, options, later)


def test_needs_new_cert_missing_returns_no_certificate(signed):
    assert t.needs_new_cert("", signed[1], signed[3], datetime.now(UTC)) == "no certificate"
