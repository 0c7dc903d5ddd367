"""`python -m lab status`: what is there, at which addresses, and how to get in."""
from __future__ import annotations

from typing import TYPE_CHECKING

from lab import network

if TYPE_CHECKING:
    from lab.lab import Lab


def host_rows(lab: Lab) -> list[dict[str, str]]:
    """One row per planned host (or per host directory when there is no plan yet)."""
    try:
        plan = lab.plan()
        hosts = [(h.name, h.plan.role, str(h.private_ip), str(h.public_ip or "-"),
                  ",".join(str(a) for a in h.site_ips) or "-") for h in plan.hosts]
    except (OSError, ValueError):  # no CA yet, or a stack that does not load: show what exists
        hosts = [(n, "?", "?", "?", "?") for n in lab.host_dirs()]
    rows = []
    for name, role, private, public, sites in hosts:
        c = lab.container(name)
        if c.supervisor_pid() is not None and c.init_pid() is not None:
            state = "running"
            boot = c.exec(["systemctl", "is-system-running"], check=False, timeout=10)
            systemd = boot.stdout.strip() or "?"
        else:
            state = "stopped" if c.exists() else "absent"
            systemd = "-"
        rows.append({"host": name, "role": role, "state": state, "systemd": systemd,
                     "private": private, "public": public, "site IPs": sites})
    return rows


def render_table(lab: Lab, rows: list[dict[str, str]]) -> str:
    cfg = lab.cfg
    out = []
    if rows:
        cols = list(rows[0])
        width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
        out.append("  ".join(c.ljust(width[c]) for c in cols).rstrip())
        for r in rows:
            out.append("  ".join(r[c].ljust(width[c]) for c in cols).rstrip())
    else:
        out.append("no hosts")
    links = network.lab_links(cfg.prefix)
    bridges = [b for b in (cfg.public_bridge, cfg.private_bridge) if b in links]
    apt = lab.apt.pid()
    out += [
        "",
        f"lab {cfg.prefix}: state {cfg.state_dir}, stack {cfg.stack_file}",
        f"bridges: public {cfg.public_bridge} {cfg.public_cidr}, private {cfg.private_bridge} "
        f"{cfg.private_cidr} ({'up' if len(bridges) == 2 else 'missing'})",
        f"apt proxy: {lab.apt.url} ({'pid ' + str(apt) if apt else 'not running'})",
    ]
    if lab.ssh_config_path.exists():
        out += [
            f"inventory: {lab.inventory_path}",
            f"ssh: python -m lab ssh HOST   (or: ssh -F {lab.ssh_config_path} HOST)",
        ]
    return "\n".join(out)
