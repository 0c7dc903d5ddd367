"""Bad input: each invalid config is rejected with the exact field path and message."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from model import ConfigErrors, parse_stack
from model.fields import region_location
from model.topology import plan_hosts, private_addresses
from model.types import Smoke

FILE = "Pulumi.prod.yaml"


def _set(path: str, value):
    """A change that sets config[hosting:<a>][<b>]... (list indexes as ints) to value."""
    def change(c: dict) -> None:
        keys = path.split(".")
        node = c["hosting:" + keys[0]]
        for k in keys[1:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return change


_DELETE = object()
CA = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILrCZnscvqVoIb9pKlU9w7Yi3vFQq6U8LKzDcAnWSYMY")


def _dup_site_name(c):
    c["hosting:sites"][1]["name"] = "villeparisis"


def _dup_domain(c):
    c["hosting:sites"][1]["aliases"] = ["www.villeparisis.fr"]


def _dup_database(c):
    c["hosting:sites"][1]["database"]["name"] = "villeparisis"


def _unknown_top(c):
    c["hosting:sitess"] = []


def _no_namespace(c):
    c["region"] = "GRA11"


def _missing_section(c):
    del c["hosting:ssh"]


def _third_site_outside_block(c):
    site = dict(c["hosting:sites"][1], name="culture", domain="culture.villeparisis.fr",
                public_ip="198.51.100.40", host_number=102)
    site["database"] = {"name": "culture"}
    c["hosting:sites"].append(site)


def _overlapping_blocks(c):
    c["hosting:network"]["public_ip_blocks"] = ["198.51.100.16/29", "198.51.100.16/28"]


def _admin_world_v6(c):
    c["hosting:admin"]["networks"] = ["::/0"]


CASES = [
    # (id, change, path, message)
    ("dup-site-name", _dup_site_name, "sites[1].name", "duplicate site name 'villeparisis'"),
    ("dup-domain", _dup_domain, "sites[1].aliases[0]",
     "duplicate domain 'www.villeparisis.fr' (already at sites[0].aliases[0])"),
    ("dup-database", _dup_database, "sites[1].database.name",
     "duplicate database name 'villeparisis'"),
    ("dup-public-ip", _set("sites.1.public_ip", "198.51.100.17"), "sites[1].public_ip",
     "duplicate public IP (R-HOST-2: one IP per site) '198.51.100.17'"),
    ("domain-no-dot", _set("sites.0.domain", "villeparisis"), "sites[0].domain",
     "'villeparisis' is not a fully qualified domain name (needs at least one dot)"),
    ("domain-bad-label", _set("sites.0.domain", "-ville.villeparisis.fr"), "sites[0].domain",
     "'-ville.villeparisis.fr' has an invalid label '-ville' (lowercase letters, digits and "
     "inner hyphens, 1-63 characters)"),
    ("domain-uppercase", _set("sites.1.aliases", ["WWW.villeparisis.fr"]), "sites[1].aliases[0]",
     "'WWW.villeparisis.fr' has an invalid label 'WWW' (lowercase letters, digits and inner "
     "hyphens, 1-63 characters)"),
    ("domain-outside-zone", _set("sites.1.domain", "participation.example.org"),
     "sites[1].domain", "'participation.example.org' is outside the DNS zone 'villeparisis.fr' "
     "(ovh.dns_zone)"),
    ("name-shell", _set("sites.0.name", "ville;rm"), "sites[0].name",
     "'ville;rm' is not a safe identifier: 2-16 lowercase letters or digits starting with a "
     "letter (it becomes a Unix user, a database name, a host name and a path)"),
    ("name-too-long", _set("sites.0.name", "villeparisisofficial"), "sites[0].name",
     "'villeparisisofficial' is not a safe identifier: 2-16 lowercase letters or digits "
     "starting with a letter (it becomes a Unix user, a database name, a host name and a path)"),
    ("db-name-hyphen", _set("sites.0.database.name", "ville-db"), "sites[0].database.name",
     "'ville-db' is not a safe identifier: 2-16 lowercase letters or digits starting with a "
     "letter (it becomes a Unix user, a database name, a host name and a path)"),
    ("region-not-french", _set("ovh.region", "DE1"), "ovh.region",
     "'DE1' is not an OVHcloud region in France (R-GDPR-7): GRA*, SBG*, RBX*, EU-WEST-PAR"),
    ("region-b-not-french", _set("ovh.backup_b_region", "WAW1"), "ovh.backup_b_region",
     "'WAW1' is not an OVHcloud region in France (R-GDPR-7): GRA*, SBG*, RBX*, EU-WEST-PAR"),
    ("region-b-same-place", _set("ovh.backup_b_region", "GRA9"), "ovh.backup_b_region",
     "GRA9 is in the same location (Gravelines) as ovh.region GRA11: long-term backups go to "
     "another region (R-BKP-3)"),
    ("ssh-world-v4", _set("admin.networks", ["0.0.0.0/0"]), "admin.networks[0]",
     "0.0.0.0/0 opens SSH to the whole Internet (R-GDPR-6)"),
    ("ssh-world-v6", _admin_world_v6, "admin.networks[0]",
     "::/0 opens SSH to the whole Internet (R-GDPR-6)"),
    ("admin-ipv6", _set("admin.networks", ["2001:db8::/48"]), "admin.networks[0]",
     "2001:db8::/48: IPv6 sources are not supported (the OVH edge firewall filters IPv4 only)"),
    ("admin-too-many", _set("admin.networks", [f"203.0.113.{i}/32" for i in range(16)]),
     "admin.networks",
     "16 networks exceed the 15 the OVH edge firewall can hold (20 rules per IP)"),
    ("admin-too-wide", _set("admin.networks", ["10.0.0.0/7"]), "admin.networks[0]",
     "10.0.0.0/7 is too wide for an admin network (R-GDPR-6)"),
    ("cidr-host-bits", _set("network.private_cidr", "10.20.0.1/24"), "network.private_cidr",
     "'10.20.0.1/24' is not a valid CIDR (host bits set; the network is 10.20.0.0/24)"),
    ("cidr-garbage", _set("network.private_cidr", "10.20.0/33"), "network.private_cidr",
     "'10.20.0/33' is not a valid CIDR"),
    ("private-not-private", _set("network.private_cidr", "8.8.0.0/24"), "network.private_cidr",
     "8.8.0.0/24 is not a private (RFC 1918) range"),
    ("private-too-small", _set("network.private_cidr", "10.20.0.0/26"), "network.private_cidr",
     "10.20.0.0/26 is too small for 2 sites: web hosts are numbered from .100 "
     "(sites[].host_number)"),
    ("host-number-duplicate", _set("sites.1.host_number", 100), "sites[1].host_number",
     "duplicate host number (one private address per web host) '100'"),
    ("host-number-below-web-range", _set("sites.0.host_number", 99), "sites[0].host_number",
     "99 is out of range 100..254: web hosts are numbered from .100 (below: gateways, DHCP "
     "pools, proxy, ops, storage) up to the last address of network.private_cidr 10.20.0.0/24"),
    ("host-number-beyond-cidr", _set("sites.1.host_number", 255), "sites[1].host_number",
     "255 is out of range 100..254: web hosts are numbered from .100 (below: gateways, DHCP "
     "pools, proxy, ops, storage) up to the last address of network.private_cidr 10.20.0.0/24"),
    ("host-number-string", _set("sites.0.host_number", "100"), "sites[0].host_number",
     "must be an integer, got a string"),
    ("host-number-missing", _set("sites.1.host_number", _DELETE), "sites[1].host_number",
     "missing (required): the web host's fixed private address, network.private_cidr + "
     "host_number, unique, from 100; stack files written before this key existed used 100, "
     "101... in the order of the sites"),
    ("blocks-overlap", _overlapping_blocks, "network.public_ip_blocks[1]",
     "198.51.100.16/28 overlaps network.public_ip_blocks[0] 198.51.100.16/29"),
    ("ip-outside-block", _third_site_outside_block, "sites[2].public_ip",
     "198.51.100.40 is outside the allowed public IP blocks (network.public_ip_blocks: "
     "198.51.100.16/29)"),
    ("ip-not-ip", _set("sites.0.public_ip", "198.51.100.300"), "sites[0].public_ip",
     "'198.51.100.300' is not an IP address"),
    ("php-unknown", _set("sites.0.php.version", "7.4"), "sites[0].php.version",
     "unknown PHP version '7.4'; supported: 8.4"),
    ("php-number", _set("sites.0.php.version", 8.4), "sites[0].php.version",
     "must be a non-empty string, got a number"),
    ("drupal-unknown", _set("sites.1.drupal.version", "7"), "sites[1].drupal.version",
     "unknown Drupal version '7'; supported: 11"),
    ("retention-monthly", _set("backup.monthly_keep_days", 400), "backup.monthly_keep_days",
     "400 is out of range 1..365: nothing may be kept longer than one year (R-GDPR-3, R-BKP-6)"),
    ("retention-weekly", _set("backup.weekly_keep_days", 42), "backup.weekly_keep_days",
     "42 is out of range 1..35: weekly backups older than 5 weeks are deleted (R-BKP-4)"),
    ("retention-a", _set("backup.a_keep_days", 366), "backup.a_keep_days",
     "366 is out of range 1..365: nothing may be kept longer than one year (R-GDPR-3, R-BKP-6)"),
    ("retention-string", _set("backup.local_keep_days", "7"), "backup.local_keep_days",
     "must be an integer, got a string"),
    ("weekday", _set("backup.weekly_day", "sundy"), "backup.weekly_day",
     "unknown weekday 'sundy'; supported: monday, tuesday, wednesday, thursday, friday, "
     "saturday, sunday"),
    ("timezone", _set("backup.timezone", "Europe/Pariss"), "backup.timezone",
     "'Europe/Pariss' is not a known time zone"),
    ("user-ca-missing", _set("ssh.user_ca_public_key", _DELETE), "ssh.user_ca_public_key",
     "missing (required)"),
    ("host-ca-garbage", _set("ssh.host_ca_public_key", "ssh-ed25519 not*base64"),
     "ssh.host_ca_public_key", "has a key body that is not valid base64"),
    ("host-ca-type-mismatch", _set("ssh.host_ca_public_key", CA.replace("ssh-ed25519",
                                                                         "ssh-rsa")),
     "ssh.host_ca_public_key", "has a key body that is not a ssh-rsa key"),
    ("user-ca-secret", _set("ssh.user_ca_public_key", {"secure": "AAAB"}),
     "ssh.user_ca_public_key", "must be a plain value, not a Pulumi secret"),
    ("login-root", _set("ssh.login_user", "root"), "ssh.login_user",
     "must not be root (PermitRootLogin no; use sudo)"),
    ("cert-ttl", _set("ssh.user_cert_ttl_hours", 720), "ssh.user_cert_ttl_hours",
     "720 is out of range 1..24: user certificates are short-lived"),
    ("principal-role", _set("ssh.principals", {"sysadmin": ["proxy", "dns"]}),
     "ssh.principals.sysadmin[1]", "unknown role 'dns'; supported: proxy, web, ops, storage"),
    ("principal-uncovered-role", _set("ssh.principals", {"sysadmin": ["proxy", "web", "ops"]}),
     "ssh.principals", "no principal may log in to role 'storage'"),
    ("typo-site-key", _set("sites.0.aliasses", []), "sites[0].aliasses",
     "unknown key (typo?); known keys: aliases, backup, codebase, database, domain, drupal, "
     "headers, host_number, name, php, public_ip, update"),
    ("update-smoke-path", _set("sites.0.update", {"smoke": [{"path": "news"}]}),
     "sites[0].update.smoke[0].path", "a path starting with / (URL characters only)"),
    ("update-profile", _set("sites.1.update", {"sanitize": ["wordpress"]}),
     "sites[1].update.sanitize[0]", "unknown value 'wordpress'; supported: drupal, fixture"),
    ("update-domain", _set("sites.0.update", {"allowed_email_domain": "Example"}),
     "sites[0].update.allowed_email_domain", "a domain name (lowercase)"),
    ("typo-nested-key", _set("sites.0.php.memory_limit", 256), "sites[0].php.memory_limit",
     "unknown key (typo?); known keys: max_execution_seconds, memory_limit_mb, upload_max_mb, "
     "version"),
    ("typo-top-key", _unknown_top, "hosting:sitess",
     "unknown key (typo?); known: acme, admin, backup, environment, exposure, flavors, monitoring, "
     "network, ovh, sites, ssh, storage, tls"),
    ("no-namespace", _no_namespace, "region",
     "config keys need a namespace, e.g. 'hosting:region'"),
    ("missing-section", _missing_section, "ssh", "missing (required key 'hosting:ssh')"),
    ("missing-site-key", _set("sites.1.domain", _DELETE), "sites[1].domain",
     "missing (required)"),
    ("env-unknown", lambda c: c.update({"hosting:environment": "staging"}), "environment",
     "unknown environment 'staging'; supported: prod, preprod"),
    ("env-file-mismatch", lambda c: c.update({"hosting:environment": "preprod",
                                              "hosting:exposure": {"indexable": False,
                                                                   "allow": ["203.0.113.8/29"]}}),
     "environment", "'preprod' does not match the stack file name (prod)"),
    ("not-indexable-without-allow",
     lambda c: c.update({"hosting:exposure": {"indexable": False}}), "exposure.allow",
     "missing: a non-indexable stack needs an IP allowlist"),
    ("backup-time", _set("sites.0.backup.time", "25:00"), "sites[0].backup.time",
     "'25:00' is not a time of day HH:MM"),
    ("codebase-type", _set("sites.0.codebase.type", "svn"), "sites[0].codebase.type",
     "unknown codebase type 'svn'; supported: git, composer, archive"),
    ("codebase-url-shell", _set("sites.0.codebase.url", "https://x.org/a.git;reboot"),
     "sites[0].codebase.url", "'https://x.org/a.git;reboot' must be an https://, ssh:// or git@ "
     "URL without shell metacharacters, its host starting with a letter or digit"),
    ("codebase-url-option-host", _set("sites.0.codebase.url", "git@-oProxyCommand=x:a.git"),
     "sites[0].codebase.url", "'git@-oProxyCommand=x:a.git' must be an https://, ssh:// or git@ "
     "URL without shell metacharacters, its host starting with a letter or digit"),
    ("codebase-ref-option", _set("sites.0.codebase.ref", "--upload-pack=touch /tmp/x"),
     "sites[0].codebase.ref", "'--upload-pack=touch /tmp/x' is not a valid git ref or composer "
     "constraint (letters, digits, ._/^~<>=*|, - and spaces; not starting with '-' or a space)"),
    ("archive-unpinned", _set("sites.0.codebase", {"type": "archive",
                                                   "url": "https://x.org/site.tar.gz"}),
     "sites[0].codebase.sha256", "missing: a release archive must be pinned by its SHA-256"),
    ("vlan-range", _set("network.vlan_id", 5000), "network.vlan_id",
     "5000 is out of range 0..4000: OVH vRack VLAN ids"),
    ("project-id", _set("ovh.project_id", "my-project"), "ovh.project_id",
     "'my-project' is not an OVH Public Cloud project id (32 hex digits)"),
    ("tls-relative", _set("tls.certificate", "wildcard.pem"), "tls.certificate",
     "'wildcard.pem' must be an absolute path"),
    ("flavor-missing", _set("flavors.storage", _DELETE), "flavors.storage", "missing (required)"),
    ("no-sites", lambda c: c.update({"hosting:sites": []}), "sites",
     "must list at least one site (R-SCOPE-1)"),
    ("site-not-mapping", lambda c: c.update({"hosting:sites": ["villeparisis.fr"]}), "sites[0]",
     "must be a mapping, got a string"),
]


@pytest.mark.parametrize("change,path,message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_parse_stack_invalid_config_names_field_and_problem(mutated, change, path, message):
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(change), FILE)
    found = [(e.path, e.message) for e in info.value.errors]
    assert (path, message) in found, found
    assert all(e.file == FILE for e in info.value.errors)


def test_cases_cover_at_least_thirty_distinct_fields():
    assert len({c[2] for c in CASES}) >= 30


def test_parse_stack_several_problems_reports_all_at_once(mutated):
    def change(c):
        c["hosting:ovh"]["region"] = "DE1"
        c["hosting:sites"][0]["name"] = "Bad Name"
        c["hosting:admin"]["networks"] = ["0.0.0.0/0"]
        c["hosting:backup"]["monthly_keep_days"] = 500
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(change), FILE)
    assert {"ovh.region", "sites[0].name", "admin.networks[0]",
            "backup.monthly_keep_days"} <= set(info.value.paths())


def test_parse_stack_host_number_problems_in_several_sites_reported_together(mutated):
    def change(c):
        c["hosting:sites"][0]["host_number"] = 300
        del c["hosting:sites"][1]["host_number"]
        c["hosting:sites"][1]["name"] = "Bad Name"
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(change), FILE)
    assert {"sites[0].host_number", "sites[1].host_number", "sites[1].name"} <= \
        set(info.value.paths())
    assert all(str(e).startswith(f"{FILE}: sites[") for e in info.value.errors)


def test_parse_stack_host_number_above_254_fits_a_wider_cidr(mutated):
    def change(c):
        c["hosting:network"]["private_cidr"] = "10.20.0.0/23"
        c["hosting:sites"][1]["host_number"] = 300
    stack = parse_stack(mutated(change), FILE)
    assert private_addresses(stack)["web-participation"] == IPv4Address("10.20.1.44")


def test_parse_stack_reordered_sites_keep_their_addresses(mutated):
    before = private_addresses(parse_stack(mutated(lambda c: None), FILE))
    after = private_addresses(parse_stack(mutated(
        lambda c: c["hosting:sites"].reverse()), FILE))
    assert after == before
    assert before["web-villeparisis"] == IPv4Address("10.20.0.100")
    assert before["web-participation"] == IPv4Address("10.20.0.101")


def test_parse_stack_invalid_yaml_reports_yaml_error():
    with pytest.raises(ConfigErrors) as info:
        parse_stack("config: [unclosed", FILE)
    assert info.value.errors[0].path == "<yaml>"
    assert info.value.errors[0].message.startswith("not valid YAML")


def test_parse_stack_provider_secrets_not_needed(mutated):
    def change(c):
        c["ovh:applicationSecret"] = {"secure": "v1:AAAA"}
    stack = parse_stack(mutated(change), FILE)
    assert stack.environment == "prod"


def test_parse_stack_real_prod_builds_both_sites(mutated):
    stack = parse_stack(mutated(lambda c: None), FILE)
    assert [s.domain for s in stack.sites] == ["villeparisis.fr", "participation.villeparisis.fr"]
    assert [h.name for h in plan_hosts(stack)] == [
        "proxy", "ops", "web-villeparisis", "web-participation", "backup-a", "backup-b"]


# R-BKP-3: backup-b's region must be in another location, whatever the names say.
@pytest.mark.parametrize("main,far,city", [
    ("EU-WEST-PAR-A", "EU-WEST-PAR-B", "Paris"),  # two zones of the Paris 3-AZ region
    ("EU-WEST-PAR", "PAR1", "Paris"),
    ("GRA7", "GRA11", "Gravelines"),
    ("SBG5", "SBG7", "Strasbourg"),
])
def test_parse_stack_backup_b_same_location_other_name_refused(mutated, main, far, city):
    def change(c):
        c["hosting:ovh"].update(region=main, backup_b_region=far)
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(change), FILE)
    assert [(e.path, e.message) for e in info.value.errors] == [(
        "ovh.backup_b_region", f"{far} is in the same location ({city}) as ovh.region {main}: "
        "long-term backups go to another region (R-BKP-3)")]


@pytest.mark.parametrize("main,far", [
    ("GRA11", "SBG5"), ("EU-WEST-PAR-A", "GRA11"), ("RBX8", "SBG5"), ("GRA9", "EU-WEST-PAR"),
])
def test_parse_stack_backup_b_in_another_location_accepted(mutated, main, far):
    def change(c):
        c["hosting:ovh"].update(region=main, backup_b_region=far)
    stack = parse_stack(mutated(change), FILE)
    assert (stack.ovh.region, stack.ovh.backup_b_region) == (main, far)


@pytest.mark.parametrize("region,city", [
    ("GRA11", "Gravelines"), ("SBG5", "Strasbourg"), ("RBX8", "Roubaix"),
    ("EU-WEST-PAR", "Paris"), ("EU-WEST-PAR-C", "Paris"), ("PAR1", "Paris"), ("DE1", None),
])
def test_region_location_by_site_code(region, city):
    assert region_location(region) == city


def test_parse_stack_site_quota_default_shares_the_smaller_volume(mutated):
    stack = parse_stack(mutated(lambda c: None), FILE)
    st = stack.storage
    expected = int(0.9 * min(st.backup_a_volume_gb, st.backup_b_volume_gb)) // len(stack.sites)
    assert st.site_quota_gb is None and st.quota_gb(len(stack.sites)) == expected


def test_parse_stack_site_quota_too_large_for_the_volumes_names_the_field(mutated):
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(_set("storage.site_quota_gb", 100000)), FILE)
    [(path, message)] = [(e.path, e.message) for e in info.value.errors]
    assert path == "storage.site_quota_gb" and "R-GDPR-4" in message


def test_parse_stack_site_quota_set_is_used(mutated):
    stack = parse_stack(mutated(_set("storage.site_quota_gb", 20)), FILE)
    assert stack.storage.quota_gb(len(stack.sites)) == 20


def test_parse_stack_site_without_headers_gets_the_schema_defaults(mutated):
    from model.parse import default_headers

    stack = parse_stack(mutated(lambda c: None), FILE)
    headers = {s.headers for s in stack.sites}
    assert headers == {default_headers()}
    csp = default_headers().content_security_policy
    assert "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert "camera=()" in default_headers().permissions_policy


def test_parse_stack_site_headers_set_are_kept_other_key_default(mutated):
    from model.parse import default_headers

    csp = "default-src 'self'; script-src 'self' https://cdn.example.org"
    stack = parse_stack(mutated(_set("sites.1.headers", {"content_security_policy": csp})), FILE)
    assert stack.sites[1].headers.content_security_policy == csp
    assert stack.sites[1].headers.permissions_policy == default_headers().permissions_policy
    assert stack.sites[0].headers == default_headers()


@pytest.mark.parametrize("value", ['default-src "self"', "default-src $host",
                                   "default-src \\x", "default-src 'self'\nX: y", ""])
def test_parse_stack_site_header_that_could_leave_nginx_quotes_names_the_field(mutated, value):
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(_set("sites.0.headers", {"content_security_policy": value})), FILE)
    paths = [e.path for e in info.value.errors]
    assert paths == ["sites[0].headers.content_security_policy"], info.value.errors


def test_parse_stack_update_missing_policy_defaults(mutated):
    site = parse_stack(mutated(lambda c: None), FILE).sites[0]
    assert site.update.smoke == (Smoke("/"),) and site.update.sanitize == ("drupal",)
    assert site.update.allowed_email_domain == "example.invalid"


def test_parse_stack_update_policy_read(mutated):
    site = parse_stack(mutated(_set("sites.0.update", {
        "smoke": [{"path": "/news", "marker": "news"}], "sanitize": ["drupal", "fixture"],
        "sanitize_sql": ["DELETE FROM x"], "check_command": "drush status"})), FILE).sites[0]
    assert site.update.smoke == (Smoke("/news", "news"),)
    assert site.update.sanitize == ("drupal", "fixture")
    assert site.update.sanitize_sql == ("DELETE FROM x",)
    assert site.update.check_command == "drush status"
