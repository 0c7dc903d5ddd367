"""The storage server's ledger, read from the admin side (issue 19; R-INC-1, R-GDPR-9).

`fab restore --from a|b` chooses its backup here, from what the storage server recorded
(backup/ledger.py: arrival, declared claims, suspicion), never from the snapshots' own
claims, and hands the on-host restore the exact pair. The ledger is brought up to date first
(`python3 -m backup.ledger`, as the site's storage user, like the rotation), so a snapshot that
arrived since the last rotation is judged too.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from backup.restore_choose import parse_at
from backup.restore_db import RestoreError
from backup.restore_ledger import Choice, ChooseError, choose
from engine.access import Access
from engine.inventory import Inventory
from roles.backup.layout import PYTHON, RUNNER_DIR, BackupLayout
from tasks.backup_setup import sudo


class LedgerError(RuntimeError):
    pass


def ledger_argv(site: str, *extra: str) -> list[str]:
    lay = BackupLayout(site)
    return ["runuser", "-u", lay.storage_user, "--", "env", f"PYTHONPATH={RUNNER_DIR}", PYTHON,
            "-m", "backup.ledger", "--site", site, *extra]


def read_ledger(inv: Inventory, access: Access, site: str, tier: str) -> dict[str, Any]:
    """Update then read the ledger of `site` on the storage server of `tier` (a or b)."""
    host = inv.storage_host(tier)
    conn = access.connection(host)
    update = sudo(conn, ledger_argv(site), timeout=900, warn=True)
    if update.exited != 0:
        raise LedgerError(f"ledger of {site} on {host.name}: {update.stderr.strip()[-800:]}")
    res = sudo(conn, ledger_argv(site, "--json"), timeout=300, warn=True)
    if res.exited != 0:
        raise LedgerError(f"ledger of {site} on {host.name}: {res.stderr.strip()[-800:]}")
    try:
        return json.loads(res.stdout)
    except ValueError as exc:
        raise LedgerError(f"ledger of {site} on {host.name}: no JSON ({exc})") from None


def _moment(text: str, option: str, zone: ZoneInfo) -> Any:
    try:
        return parse_at(text, zone)
    except RestoreError as exc:
        raise LedgerError(str(exc).replace("--at", option)) from None


def pinned_argv(argv: list[str], choice: Choice) -> list[str]:
    """The on-host restore's command line with the ledger's pair instead of --at (pure)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--at":
            skip = True
            continue
        out.append(arg)
    return [*out, "--snapshot", choice.db, "--snapshot", choice.files]


def choose_from_ledger(inv: Inventory, doc: dict[str, Any], site: str, at: str = "",
                       before: str = "", allow_suspect: Sequence[str] = (),
                       emit: Callable[[str], None] = print) -> Choice:
    zone = ZoneInfo(inv.backup_timezone)
    if before and len(before) == 10:
        raise LedgerError(f"--before {before!r}: give the time of the suspected compromise "
                          "(a date alone would mean the end of that day)")
    at_t = _moment(at, "--at", zone) if at else None
    before_t = _moment(before, "--before", zone) if before else None
    try:
        got = choose(doc.get("entries") or [], inv.site(site).host, at=at_t, before=before_t,
                     allow_suspect=allow_suspect)
    except ChooseError as exc:
        raise LedgerError(f"{site} on {doc.get('tier')}: {exc}") from None
    for line in got.skipped:
        emit(f"restore {site}: SKIPPED suspect snapshot {line}")
    for sid in got.allowed:
        emit(f"restore {site}: WARNING taking suspect snapshot {sid[:8]} (--allow-suspect)")
    if doc.get("bad_lines"):
        emit(f"restore {site}: WARNING the ledger has {doc['bad_lines']} unreadable line(s)")
    emit(f"restore {site}: chosen from the storage server's ledger: the night of "
         f"{got.declared}, arrived {got.arrival.isoformat()} (db {got.db[:8]}, files "
         f"{got.files[:8]})")
    return got
