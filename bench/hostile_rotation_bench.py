"""How long the storage side's decisions take on a hostile repository (issue 19).

    python bench/hostile_rotation_bench.py [--snapshots N]

A year of genuine nights (two snapshots each) plus N forged snapshots written by a
compromised host (backdated, future, year 0, foreign host, garbage times): the time to fold
the ledger (backup.ledger), build the rotation's view (backup.trusted) and select what tier A
keeps (backup.rotation), and to choose a restore from the ledger (backup.restore_ledger).
restic's own listing and forget are not included: they depend on the repository, not on us.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backup import ledger  # noqa: E402
from backup.policy import DEFAULT_POLICY  # noqa: E402
from backup.restore_ledger import choose  # noqa: E402
from backup.rotation import select  # noqa: E402
from backup.suspect import Expectation  # noqa: E402
from backup.trusted import rotation_view  # noqa: E402

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)


def lines(forged: int) -> tuple[list[str], list[dict]]:
    rnd = random.Random(19)
    out, listing = [], []
    n = 0
    for day in range(365):
        when = NOW - timedelta(days=day, minutes=45)
        for kind in ("db", "files"):
            n += 1
            out.append((f"{n:064x}", z(when), when + timedelta(minutes=5), "web-demo", kind))
    bad = ["0000-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "garbage"]
    for _ in range(forged):
        n += 1
        arrival = NOW - timedelta(days=rnd.randint(0, 400))
        text = rnd.choice(bad + [z(arrival - timedelta(days=rnd.randint(2, 30)))])
        out.append((f"{n:064x}", text, arrival, rnd.choice(["web-demo", "web-x"]), "db"))
    events = []
    for sid, text, arrival, host, kind in out:
        events.append(json.dumps({"event": "seen", "id": sid, "arrival": arrival.isoformat(),
                                  "first_seen": arrival.isoformat(), "declared": text,
                                  "host": host, "tags": [kind], "paths": []}))
        listing.append({"id": sid, "time": text, "hostname": host, "tags": [kind]})
    return events, listing


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--snapshots", type=int, default=10000, help="forged snapshots")
    args = p.parse_args()
    events, listing = lines(args.snapshots)
    t0 = time.perf_counter()
    book = ledger.fold(events, Expectation("web-demo"))
    t1 = time.perf_counter()
    view = rotation_view(listing, book, "web-demo", DEFAULT_POLICY, NOW)
    t2 = time.perf_counter()
    selection = select("a", view.genuine, NOW, DEFAULT_POLICY)
    t3 = time.perf_counter()
    entries = [e.as_dict() for e in book.entries.values()]
    got = choose(entries, "web-demo")
    t4 = time.perf_counter()
    print(f"{len(events)} snapshots ({args.snapshots} forged): fold {t1 - t0:.3f} s, "
          f"view {t2 - t1:.3f} s, select {t3 - t2:.3f} s, restore choice {t4 - t3:.3f} s")
    print(f"genuine {len(view.genuine)}, suspect {len(view.suspect)}, kept as evidence "
          f"{len(view.others_kept)}, expired {len(view.others_expired)}, tier A keeps "
          f"{len(selection.keep)}; restore takes the night of {got.declared}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
