"""Mutation proofs of the verify suite's independent checks on real hosts (issue 17): each is
broken on purpose on a deployed lab, the verify check sees it (and only there), the host is put
back exactly as it was, and the same checks pass again. The pure parts are proven in
tests/unit/verify; here the live ones: the firewall read from the kernel and probed from other
hosts, the blocked paths asked of the real nginx, MariaDB's accounts read by SQL.

Mutations, all on the web hosts (restored in `finally`, each restore checked):
- web-participation: `nft add rule inet filter input accept` (policy drop stays: the old
  check passed this); restored by `nft -f /etc/nftables.conf`, the deployed file.
- web-villeparisis: the nginx rule refusing `*.txt|log|md` disabled and nginx reloaded;
  restored from a copy of nginx.conf.
- web-participation: `CREATE USER 'drift'@'%'` (no password, any host); dropped.
"""
from __future__ import annotations

import re

import pytest

from .test_web_support import WebTier
from .test_web_verify import VERIFY, tier, verify  # noqa: F401 (tier: the fixture)

pytestmark = pytest.mark.lab
SELECT = ("nftables_openings or firewall_probes or blocked_path or pages_are_answered "
          "or mysql_db")
NGINX_SAVED = "/root/nginx.conf.before-verify-mutation"


def failed_names(out: str) -> set[str]:
    return set(re.findall(r"^FAILED \S+::(\S+)", out, re.M))


def test_verify_checks_fail_on_broken_hosts_and_pass_once_restored(
        tier: WebTier) -> None:  # noqa: F811 (the fixture imported above)
    lab = tier.lab
    fw_host, nginx_host = tier.host_of("participation"), tier.host_of("villeparisis")
    modules = [str(VERIFY / m) for m in ("test_firewall.py", "test_nginx.py",
                                         "test_mariadb.py")]
    lab.sudo(fw_host, "nft add rule inet filter input accept")
    lab.sudo(nginx_host, f"cp -p /etc/nginx/nginx.conf {NGINX_SAVED} && "
                         "sed -i 's/(txt|log|md)\\$/(disabled)$/' /etc/nginx/nginx.conf && "
                         "grep -q '(disabled)' /etc/nginx/nginx.conf && nginx -t -q && "
                         "systemctl reload nginx")
    lab.sudo(fw_host, "mariadb -e \"CREATE USER 'drift'@'%'\"")
    errors = []
    try:
        broken = verify(lab, *modules, "-k", SELECT)
        out = broken.stdout
        failed = failed_names(out)
        assert broken.returncode == 1, out[-4000:]
        want = {f"test_nftables_openings_are_exactly_the_matrix[{fw_host}]",
                f"test_firewall_probes_from_other_hosts_match_the_matrix[{fw_host}]",
                f"test_mysql_db_05_no_account_without_a_password[{fw_host}]",
                f"test_mysql_db_07_no_wildcard_hosts[{fw_host}]"}
        assert want <= failed, (sorted(failed), out[-4000:])
        blocked = {n for n in failed if n.startswith("test_web_blocked_path_is_refused")}
        assert blocked and all(nginx_host in n and n.endswith((".txt]", ".md]"))
                               for n in blocked), sorted(blocked)
        assert failed == want | blocked, sorted(failed - want - blocked)  # nothing else
        assert "*/* to * open to 0.0.0.0/0, ::/0 beyond the matrix" in out
        assert "mysql-db-07: accounts for wildcard hosts: drift@%" in out
    finally:
        for host, command in (
                (fw_host, "nft -f /etc/nftables.conf && "
                          "nft -s list ruleset | cmp -s - /var/lib/hosting/nftables.applied"),
                (nginx_host, f"mv {NGINX_SAVED} /etc/nginx/nginx.conf && nginx -t -q && "
                             "systemctl reload nginx"),
                (fw_host, "mariadb -e \"DROP USER IF EXISTS 'drift'@'%'\"")):
            done = lab.sudo(host, command, check=False)
            if done.returncode != 0:
                errors.append(f"{host}: restore failed: {command}: {done.stderr[-500:]}")
    assert not errors, errors
    fixed = verify(lab, *modules, "-k", SELECT)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
