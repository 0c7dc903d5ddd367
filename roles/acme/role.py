"""The ACME roles (issue 14, R-SCOPE-2): the wildcard certificate by DNS-01 on the OVH zone.

`acme_ops` (ops): certbot (Debian package), certbot's defaults (/etc/letsencrypt/cli.ini: ACME
directory, account e-mail, ECDSA key, DNS-01 through the manual authenticator and the OVH
hooks of onhost/acme/ovh_dns.py, which read the credentials file; the deploy hook), the
renewal by Debian's certbot.timer with a drop-in (`--no-random-sleep-on-renew` in the lab only;
an incident record when a run fails), the deploy
hook and the SSH client it pushes with (its own key, generated on ops, certified by
`fab acme.setup` with the user CA: principal acme-deploy, forced command, ops' address only).
The credentials file (/etc/hosting/acme/ovh.ini, 0600) is never written by the role: `fab
acme.set-credentials` puts it there from stdin; the role keeps its directory 0700.

`acme_proxy` (proxy): the account the hook logs in as (`hosting-acme`, principal acme-deploy
with the same forced command), its one sudo rule, the installer (onhost/acme/install.py:
check the pair, save the live one, nginx -t, reload, see nginx serve it, put it back on
failure) and its configuration (the lineages it accepts: one per certificate set, where each
goes, which site IPs serve it). roles/proxy points each site at its lineage's pair.

Without an enabled `acme` section `acme_ops` is empty and `acme_proxy` removes the proxy's
principals file and sudo rule for the deploy (turning ACME off closes that path).
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.render import render
from engine.resources import (
    Absent,
    Check,
    Directory,
    File,
    Handler,
    Packages,
    Resource,
    Service,
    User,
)
from engine.role import Desired, HostContext
from model.bootstrap import HOST_KRL, PRINCIPALS_DIR, SSH_GROUP
from roles.acme import config as c

SOURCE = Path(__file__).resolve().parents[2] / "onhost" / "acme"
HOOK_SCRIPT = f"{c.HOOK_DIR}/deploy_hook.py"
FAILED_UNIT = "hosting-acme-failed.service"
DROPIN = "/etc/systemd/system/certbot.service.d/hosting.conf"
PROXY_HOME = "/var/lib/hosting-acme"

HANDLERS = (Handler("acme-daemon-reload", ("systemctl", "daemon-reload")),)


def hook_command() -> str:
    return f"{c.PYTHON} -I {HOOK_SCRIPT} deploy"


def install_command() -> str:
    """The proxy's forced command: the same string in the certificate (fab acme.setup), the
    principals file and sudoers (sshd refuses a certificate whose forced command differs).
    Which lineages it accepts, and where each goes, is the root-owned PROXY_LINEAGES file
    (written by this role from the inventory), not the caller's choice: adding a certificate
    set changes that file, not the certificate."""
    return f"sudo -n {c.PYTHON} -I {c.INSTALLER} --config {c.PROXY_LINEAGES}"


def dns_hook(acme: c.Acme, command: str) -> str:
    """certbot's manual DNS-01 hook (onhost/acme/ovh_dns.py): no secret in it, only paths."""
    return (f"{c.PYTHON} -I {c.HOOK_DIR}/ovh_dns.py {command} --credentials {c.CREDENTIALS} "
            f"--zone {acme.zone} --propagation-seconds {acme.propagation_seconds}")


def cli_ini(acme: c.Acme) -> str:
    return render("acme/cli.ini.j2", acme=acme, auth_hook=dns_hook(acme, "auth"),
                  cleanup_hook=dns_hook(acme, "cleanup"), hook=hook_command())


def certbot_dropin(acme: c.Acme) -> str:
    return render("acme/certbot.service.conf.j2", lab=acme.lab, failed_unit=FAILED_UNIT)


def ssh_config(ctx: HostContext) -> str:
    proxy = ctx.inventory.proxy
    return render("acme/ssh_config.j2", proxy_address=proxy.private_ip, user=c.PROXY_USER,
                  key=c.SSH_KEY, cert=c.SSH_CERT, known_hosts=c.KNOWN_HOSTS,
                  host_krl=HOST_KRL)


def known_hosts(ctx: HostContext) -> str:
    # The proxy proves itself with its host certificate (no trust on first use).
    # ssh looks the HostName (the private address) up: both names, like the backup pushes.
    proxy = ctx.inventory.proxy
    return f"@cert-authority proxy,{proxy.private_ip} {ctx.inventory.host_ca_public_key}\n"


def ssh_key_check() -> Check:
    key = c.SSH_KEY
    return Check("acme-ssh-key", ("sh", "-c", f"test -s {key} && test -s {key}.pub || exit 3"),
                 ("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "acme-deploy@ops",
                  "-f", key),
                 "generate the SSH key certificate deploys use (certified by fab acme.setup)")


def acme_ops(ctx: HostContext) -> Desired:
    acme = c.acme(ctx.inventory)
    if acme is None:
        return Desired()
    reload_ = (HANDLERS[0].name,)
    resources: list[Resource] = [
        Packages(("certbot", "openssh-client")),
        Directory(c.CONFIG_DIR, 0o755),
        Directory(c.CREDENTIALS_DIR, 0o700),
        Directory(c.SSH_DIR, 0o700),
        Directory(c.HOOK_DIR, 0o755),
        Directory("/var/lib/hosting/acme", 0o755),
        ssh_key_check(),
        File(c.SSH_CONFIG, ssh_config(ctx), 0o600),
        File(c.KNOWN_HOSTS, known_hosts(ctx), 0o644),
        *(File(f"{c.HOOK_DIR}/{src.name}", src.read_text(), 0o644)
          for src in sorted(SOURCE.glob("*.py"))),
        File(c.CLI_INI, cli_ini(acme), 0o644),
        Directory("/etc/systemd/system/certbot.service.d", 0o755),
        File(DROPIN, certbot_dropin(acme), 0o644, notify=reload_),
        File(f"/etc/systemd/system/{FAILED_UNIT}",
             render("acme/failed.service.j2", python=c.PYTHON, hook_script=HOOK_SCRIPT),
             0o644, notify=reload_),
        Service("certbot.timer", enabled=True, running=True),
    ]
    return Desired(tuple(resources), HANDLERS)


def proxy_access_files() -> tuple[str, str]:
    return f"{PRINCIPALS_DIR}/{c.PROXY_USER}", "/etc/sudoers.d/hosting-acme"


def acme_proxy(ctx: HostContext) -> Desired:
    inv = ctx.inventory
    acme = c.acme(inv)
    if acme is None or inv.tls is None:
        # ACME off: the deploy path is closed (no principal, no sudo rule), whatever was before.
        return Desired(tuple(Absent(p) for p in proxy_access_files()))
    command = install_command()
    sudo_command = command.removeprefix("sudo -n ")
    lineages = json.dumps(c.proxy_lineages(acme, inv), indent=2, sort_keys=True) + "\n"
    resources: list[Resource] = [
        Packages(("sudo", "openssl")),
        User(c.PROXY_USER, PROXY_HOME, shell="/bin/sh", groups=(SSH_GROUP,)),  # AllowGroups
        Directory(c.HOOK_DIR, 0o755),
        File(c.INSTALLER, (SOURCE / "install.py").read_text(), 0o644),
        Directory(c.CREDENTIALS_DIR, 0o755),
        File(c.PROXY_LINEAGES, lineages, 0o644),
        File("/etc/sudoers.d/hosting-acme",
             render("acme/sudoers.j2", user=c.PROXY_USER, command=sudo_command), 0o440,
             validate="/usr/sbin/visudo -cqf {}"),
        # Only the certificate's forced command, with no pty or forwarding, whichever the
        # certificate says (sshd refuses one whose forced command differs from this).
        File(f"{PRINCIPALS_DIR}/{c.PROXY_USER}",
             f'restrict,command="{command}" {c.PRINCIPAL}\n', 0o644),
    ]
    return Desired(tuple(resources))
