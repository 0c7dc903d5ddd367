"""tasks/backup_ledger.py: `fab restore --from a|b` chooses from the storage server's ledger."""
from __future__ import annotations

import pytest

from backup.restore_ledger import Choice
from engine.inventory import Inventory
from tasks.backup_ledger import LedgerError, choose_from_ledger, ledger_argv, pinned_argv
from tasks.backup_restore import RestoreTaskError, run_restore


def entry(n: int, kind: str, declared: str, arrival: str, host: str,
          suspect: tuple[str, ...] = ()) -> dict:
    return {"id": f"{n:02x}" * 32, "declared": declared, "arrival": arrival, "host": host,
            "tags": [kind], "suspect": list(suspect), "gone": None}


def test_pinned_argv_replaces_at_with_the_ledgers_pair() -> None:
    choice = Choice("d" * 64, "f" * 64, "x", None, (), ())  # type: ignore[arg-type]
    argv = ["python3", "-m", "backup.restore", "--from", "a", "--at", "2026-01-01", "--redump"]
    assert pinned_argv(argv, choice) == ["python3", "-m", "backup.restore", "--from", "a",
                                         "--redump", "--snapshot", "d" * 64, "--snapshot",
                                         "f" * 64]


def test_ledger_argv_runs_as_the_sites_storage_user() -> None:
    argv = ledger_argv("villeparisis", "--json")
    assert argv[:3] == ["runuser", "-u", "backup-villeparisis"] and argv[-1] == "--json"


def test_choose_from_ledger_skips_suspects_and_says_so(prod: Inventory) -> None:
    site = prod.sites[0]
    doc = {"tier": "a", "entries": [
        entry(1, "db", "2026-03-01T02:15:00Z", "2026-03-01T02:20:00+00:00", site.host),
        entry(2, "files", "2026-03-01T02:15:00Z", "2026-03-01T02:21:00+00:00", site.host),
        entry(3, "db", "2026-03-02T02:15:00Z", "2026-03-05T09:00:00+00:00", site.host,
              ("backdated",)),
        entry(4, "files", "2026-03-02T02:15:00Z", "2026-03-05T09:00:00+00:00", site.host,
              ("backdated",))]}
    said: list[str] = []
    got = choose_from_ledger(prod, doc, site.name, emit=said.append)
    assert got.db == f"{1:02x}" * 32
    assert sum("SKIPPED suspect" in s for s in said) == 2


def test_choose_from_ledger_before_as_a_bare_date_is_refused(prod: Inventory) -> None:
    with pytest.raises(LedgerError, match="--before"):
        choose_from_ledger(prod, {"entries": []}, prod.sites[0].name, before="2026-03-01")


def test_run_restore_before_from_local_is_refused_before_anything() -> None:
    with pytest.raises(RestoreTaskError, match="never used"):
        run_restore("lab", "villeparisis", source="local", before="2026-03-01T10:00")
