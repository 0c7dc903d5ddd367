"""Each clause id of the contract -> how the audit grades it (tests/unit/audit/test_clauses.py
fails when an id of the contract has no row here, or a row names an id the contract lacks).

  Checks(...)   checks that run against the live platform (audit/checks/)
  Manual(...)   no machine can grade it: why, and what a person must look at
  NotApplicable the clause does not apply (why)
A Checks row may also carry a `manual` note: a part no machine sees (the OVH edge firewall
from inside, say); the row's status still comes from its checks.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from audit import checks as c
from audit.report import Evidence

Check = Callable[[c.Context], list[Evidence]]


@dataclass(frozen=True)
class Checks:
    run: tuple[Check, ...]
    note: str = ""  # what no check here sees, for a person


@dataclass(frozen=True)
class Manual:
    reason: str
    look_at: str


@dataclass(frozen=True)
class NotApplicable:
    reason: str


def firewall(ctx: c.Context) -> list[Evidence]:
    from roles.base.firewall import rules_for

    return c.firewall(ctx, lambda host: rules_for(ctx.inv, host))


def verify(module: str, *only: str) -> Check:
    return partial(c.verify_cases, module=module, only=only)


VERIFY_MODULES = {  # tests/verify module -> the ids it gives evidence for
    "test_sshd": ("R-GDPR-5",),
    "test_ssh_audit": ("R-GDPR-2", "R-GDPR-9"),
    "test_firewall": ("R-GDPR-6",),
    "test_nginx": ("R-GDPR-2", "R-HOST-1", "R-HOST-2", "R-GDPR-4"),
    "test_php_fpm": ("R-GDPR-4",),
    "test_mariadb": ("R-GDPR-4",),
    "test_monitoring": ("R-HOST-4",),
    "test_logging": ("R-GDPR-2",),  # the log flow to ops: mutual TLS (issue 17)
}

CLAUSES: dict[str, Checks | Manual | NotApplicable] = {
    "R-SCOPE-1": Checks((c.sites_listed, c.tls_sites)),
    "R-SCOPE-2": Checks((c.tls_certificate, partial(c.alert_rules, names=(
        "CertExpiring", "CertInvalid"), what="certificate monitored")),
                        "who renews the certificate (ACME or an uploaded one) is in the "
                        "deploy log; the checks see its names, its days left and its alerts"),
    "R-GDPR-1": Checks((c.encrypted_private_files,),
                       "database files and secrets outside the private files are protected by "
                       "file modes (verify: test_mariadb), not by encryption"),
    "R-GDPR-2": Checks((c.tls_sites, verify("test_nginx"), verify("test_ssh_audit"),
                        verify("test_logging"), c.offsite)),
    "R-GDPR-3": Checks((c.oldest,)),
    "R-GDPR-4": Checks((c.db_grants, verify("test_php_fpm"), verify("test_mariadb"))),
    "R-GDPR-5": Checks((c.sshd_access, verify("test_sshd"))),
    "R-GDPR-6": Checks((firewall, verify("test_firewall")),
                       "the OVH edge firewall on the public IPs is not visible from inside: "
                       "look at it in the OVH manager (IP > Firewall)"),
    "R-GDPR-7": Checks((c.regions,)),
    "R-GDPR-8": Manual("deleting everything at contract end is an event, not a state the "
                       "platform is in; backups expire by the rotation (R-GDPR-3 row)",
                       "the deletion report `fab decommission` writes for each site, and that "
                       "the site's hosts, databases, files and repositories are gone"),
    "R-GDPR-9": Checks((c.tls_sites, verify("test_ssh_audit"), c.repository_checks,
                        c.monitoring, c.restores)),
    "R-GDPR-10": Checks(()),  # this report: graded by audit.run itself
    "R-GDPR-11": Checks((c.no_logs,)),
    "R-GDPR-12": Manual("analytics IP truncation and the consent cookie's lifetime are the "
                        "sites' own settings, out of the infrastructure's hands",
                        "each site's analytics configuration (IP anonymisation on) and its "
                        "consent banner (cookie lifetime 182 days), in the Drupal admin"),
    "R-HOST-1": Checks((c.topology, verify("test_nginx"))),
    "R-HOST-2": Checks((c.topology, verify("test_nginx"))),
    "R-HOST-3": Checks((c.stacks,)),
    "R-HOST-4": Checks((c.monitoring, verify("test_monitoring"))),
    "R-BKP-1": Checks((partial(c.newest, tier="local"),)),
    "R-BKP-2": Checks((partial(c.newest, tier="a"),)),
    "R-BKP-3": Checks((partial(c.newest, tier="b"),)),
    "R-BKP-4": Checks((c.weekly,)),
    "R-BKP-5": Checks((c.monthly,)),
    "R-BKP-6": Checks((c.oldest,)),
    "R-BKP-7": Checks((c.offsite,)),
    "R-BKP-8": Checks((c.content,)),
    "R-MNT-1": Checks((c.update_window,),
                      "a `fab web.release` outside `fab update` is timed in its own record "
                      "(`fab web.status`), not graded here"),
    "R-MNT-2": Checks((c.update_qualified,)),
    "R-MNT-3": Checks((c.versions,),
                      "Drupal's own version is the codebase's (composer.lock), not the host's"),
    "R-INC-1": Checks((c.restores,)),
    "R-INC-2": Checks((c.updates, partial(c.alert_rules, names=(
        "SecurityUpdatesPending", "UnattendedUpgradesFailed"), what="updates monitored")),
                      "pending Drupal security updates are the SecurityUpdatesPending alert's "
                      "and the maintainer's (drupal.org advisories)"),
    "R-INC-3": Checks((c.sshd_access, c.ca_register, c.db_grants)),
    "R-INC-4": Checks((c.incidents,)),
    "R-DATA-1": Manual("an export is made on request",
                       "`fab export --site NAME` produces the archive (DB dump, public and "
                       "private files, manifest with checksums)"),
}
