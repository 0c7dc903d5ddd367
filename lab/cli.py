"""`python -m lab up|down|status [--names]|inventory|ssh HOST [COMMAND...]`."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lab.config import LabConfig, LabConfigError, load_config
from lab.lab import Lab
from lab.status import host_rows, render_table
from model import ConfigErrors


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab", description=(
        "The whole topology as Debian 13 containers on this machine. Options also come from "
        "LAB_PREFIX, LAB_STATE_DIR, LAB_STACK, LAB_PUBLIC_CIDR, LAB_PRIVATE_CIDR; `up` saves them "
        "in the state directory for the other commands."))
    p.add_argument("--prefix", help="names of bridges, namespaces, machines (default hlab)")
    p.add_argument("--state-dir", type=Path, help="default /var/lib/hosting-lab/PREFIX")
    p.add_argument("--stack", type=Path, help="stack config (default Pulumi.prod.yaml)")
    p.add_argument("--public-cidr", help="the lab's 'public' range (default 198.51.100.0/26)")
    p.add_argument("--private-cidr", help="the lab's vRack range (default 10.77.0.0/24)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build what is missing and start every host")
    down = sub.add_parser("down", help="stop and remove everything the lab made")
    down.add_argument("--purge", action="store_true",
                      help="also delete the state directory (CAs, user key, apt cache)")
    status = sub.add_parser("status", help="hosts, addresses, and how to reach them")
    status.add_argument("--names", action="store_true", help="host names only, one a line")
    sub.add_parser("inventory", help="print the inventory document (JSON)")
    ssh = sub.add_parser("ssh", help="run a command on a host, or open a shell")
    ssh.add_argument("host")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    return p


def config_from(args: argparse.Namespace) -> LabConfig:
    return load_config(prefix=args.prefix, state_dir=args.state_dir, stack_file=args.stack,
                       public_cidr=args.public_cidr, private_cidr=args.private_cidr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = config_from(args)
    except LabConfigError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    lab = Lab(cfg, log=lambda m: print(m, file=sys.stderr))
    try:
        return COMMANDS[args.command](lab, args)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted; `python -m lab up` repairs, `python -m lab down` removes "
              "everything", file=sys.stderr)
        return 130


def cmd_up(lab: Lab, _args: argparse.Namespace) -> int:
    try:
        report = lab.up()
    except Exception as exc:  # noqa: BLE001 - say what failed and how to clean up
        print(f"lab up failed: {exc}\nrepair with `python -m lab up`, remove everything with "
              "`python -m lab down`", file=sys.stderr)
        return 1
    for change in report.changes:
        print(f"  {change}")
    for warning in report.warnings:
        print(f"lab up: warning: {warning}", file=sys.stderr)
    if not report.changes:
        print("  nothing to do: the lab is up")
    print(f"lab {lab.cfg.prefix} up in {report.total_seconds:.1f}s "
          f"(image {report.image_seconds:.1f}s, hosts {report.hosts_seconds:.1f}s)")
    return 0


def cmd_down(lab: Lab, args: argparse.Namespace) -> int:
    left = lab.down(purge=args.purge)
    if not left.empty():
        print(f"lab down: still there: {left}", file=sys.stderr)
        return 1
    print(f"lab {lab.cfg.prefix} down: no process, mount, namespace or bridge left")
    return 0


def cmd_status(lab: Lab, args: argparse.Namespace) -> int:
    rows = host_rows(lab)
    if args.names:
        for row in rows:
            print(row["host"])
        return 0
    print(render_table(lab, rows))
    return 0


def cmd_inventory(lab: Lab, _args: argparse.Namespace) -> int:
    if not lab.inventory_path.exists():
        print(f"lab {lab.cfg.prefix} is not up (no {lab.inventory_path}); run "
              "`python -m lab up`", file=sys.stderr)
        return 1
    # What the inventory names must be usable when it is read (`fab` reads it first): the
    # 8-hour user certificate and the proxy's TLS certificate, renewed here, never by a deploy.
    try:
        lab.refresh_credentials()
    except Exception as exc:  # noqa: BLE001 - say what failed rather than hand out stale ones
        print(f"lab {lab.cfg.prefix}: cannot renew the user or TLS certificate: {exc}",
              file=sys.stderr)
        return 1
    sys.stdout.write(lab.inventory_path.read_text())
    return 0


def cmd_ssh(lab: Lab, args: argparse.Namespace) -> int:
    if not lab.ssh_config_path.exists():
        print(f"lab {lab.cfg.prefix} is not up; run `python -m lab up`", file=sys.stderr)
        return 1
    lab.renew_user_cert()  # an 8-hour certificate: renew it rather than fail after lunch
    argv = lab.ssh_argv(args.host, args.cmd)
    os.execvp(argv[0], argv)
    return 127  # pragma: no cover


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status,
            "inventory": cmd_inventory, "ssh": cmd_ssh}
