"""Does the running nginx listen where its configuration says? A probe for both the proxy and
the web roles.

Why: `systemctl reload nginx` reports success even when the master could not apply the new
configuration. It cannot when a new address-specific listen collides with an old wildcard one
(Debian's default site listens on *:80; bind() then fails with "address in use" and the old
configuration keeps running). So the live listening sockets are compared with the rendered
configuration's, and nginx is restarted when they differ: on a fresh host once, and after a
change of the listen set (a site added), never on an ordinary configuration change.
"""
from __future__ import annotations

import re

from engine.resources import Directory, File, Handler, Probe, Resource

EXPECTED = "/var/lib/hosting/nginx-listen"
RESTART = Handler("restart-nginx", ("systemctl", "restart", "nginx.service"))
# As root: every TCP socket nginx listens on, "address:port", sorted (the agent runs as root).
LIVE = ("sh", "-c", "ss -Hltnp | awk '/\"nginx\"/ {print $4}' | sort -u")


def listens(conf: str) -> list[str]:
    """The address:port pairs of a rendered nginx.conf's `listen` directives, sorted."""
    return sorted({m.group(1) for m in re.finditer(r"^\s*listen\s+([^\s;]+)", conf, re.M)})


def resources(conf: str) -> list[Resource]:
    return [
        File(EXPECTED, "".join(f"{a}\n" for a in listens(conf))),
        Probe("nginx-listen", LIVE, EXPECTED, notify=(RESTART.name,),
              summary="nginx does not listen where its configuration says (a reload cannot "
                      "replace Debian's *:80): restart it"),
    ]


def internal_tls(ca_pem: bytes, cert_pem: bytes, key_pem: bytes, ca: str, cert: str, key: str,
                 notify: tuple[str, ...]) -> list[Resource]:
    """The proxy -> web hop's TLS files on either end (issue 19 item 6), before nginx.conf (its
    `nginx -t` loads them). The key first and 0600 root (nginx's master reads it as root), so
    nginx never sees a new certificate with the old key. Only when the deploy carries them
    (Settings.internal_tls): without, the deployed files are left alone, never downgraded,
    and a host that has none fails nginx.conf's validation naming the missing file."""
    dirs = sorted({d.rpartition("/")[0] for d in (ca, cert, key)})
    return [
        *(Directory(d, 0o755) for d in dirs),
        File(key, key_pem, 0o600, sensitive=True, notify=notify),
        File(cert, cert_pem, 0o644, notify=notify),
        File(ca, ca_pem, 0o644, notify=notify),
    ]
