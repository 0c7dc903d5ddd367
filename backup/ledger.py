"""The storage server's ledger: every snapshot of one site, as the SERVER saw it (issue 19).

    python3 -m backup.ledger --site NAME [--config PATH] [--json]

What a snapshot says of itself (time, host, tags, paths) is what the web host's restic was told,
and a compromised web host tells what it likes. The ledger keeps what the storage server knows:

  arrival     the ctime of the snapshot's file in <repo>/snapshots/: set by the kernel when the
              append-only server (rclone serve restic, as the site's storage user) created it.
              No client can set it: the REST protocol has no call that changes a file's times,
              and the server never rewrites a snapshot file. Precision: the file system's
              (nanoseconds), whenever the ledger reads it.
              (A run given an earlier `now`, replaying past nights, sees them arrive then.)
  first_seen  the ledger's own clock when it recorded the snapshot: every rotation (daily)
              records first, and so does `python3 -m backup.ledger` (what `fab restore` and
              `fab backup.contain` run before they read it). The arrival does not depend on
              it: a ctime moves only if someone with root or the storage user's rights
              changes the file (chmod, chown, link), which no step of ours does; recording
              within the day freezes it against that too.
  declared    the snapshot's own time, host, tags, paths and size (restic's listing, read here
              with the repository key, which the storage server holds for the rotation).
  suspect     why its claims disagree with the server (backup.suspect), judged when the ledger
              is read, with the expectations of the day, or an admin's mark.

The file (<state_dir>/ledger.jsonl) lives outside the repository, beyond the served directory:
the forced command cannot reach it. It is append-only JSON lines, one event each:
  {"event": "seen", "id", "arrival", "first_seen", "declared", "host", "tags", "paths", "size",
   "suspect": [...]}
  {"event": "gone", "id", "at"}                  forgotten by the rotation (its file is gone)
  {"event": "mark", "since", "until", "reason", "at"}   `fab backup.contain`: every snapshot that
                                                 arrived in [since, until] is suspect
Readers fold the events (`load`); a line that is not valid JSON is counted and skipped, never
fatal. Restores choose from it by arrival (never from the snapshots' claims); the rotation
measures retention from arrival (R-BKP-6, R-GDPR-3).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup.snapshots import parse_restic_time
from backup.suspect import Expectation, reasons

LEDGER_FILE = "ledger.jsonl"
UNREADABLE = "restic cannot read it (not in the repository's listing)"
SNAPSHOT_NAME = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Entry:
    id: str
    arrival: datetime
    first_seen: datetime
    declared: str = ""
    declared_time: datetime | None = None
    host: str = ""
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    size: int | None = None
    suspect: tuple[str, ...] = ()
    gone: datetime | None = None

    @property
    def is_suspect(self) -> bool:
        return bool(self.suspect)

    @property
    def present(self) -> bool:
        return self.gone is None

    def kind(self) -> str:
        kinds = [t for t in self.tags if t in ("db", "files")]
        return kinds[0] if len(kinds) == 1 else ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "arrival": self.arrival.isoformat(),
                "first_seen": self.first_seen.isoformat(), "declared": self.declared,
                "host": self.host, "tags": list(self.tags), "paths": list(self.paths),
                "size": self.size, "suspect": list(self.suspect),
                "gone": self.gone.isoformat() if self.gone else None}


@dataclass
class Ledger:
    entries: dict[str, Entry] = field(default_factory=dict)
    marks: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: int = 0

    def present(self) -> list[Entry]:
        """Entries still in the repository, oldest arrival first."""
        return sorted((e for e in self.entries.values() if e.present),
                      key=lambda e: (e.arrival, e.id))


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def declared_time(text: str) -> datetime | None:
    """The snapshot's own time, None when it cannot be one (year 0, garbage)."""
    try:
        return parse_restic_time(text)
    except (ValueError, OverflowError):
        return None


def _marked(arrival: datetime, marks: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    out = []
    for mark in marks:
        since, until = _time(mark["since"]), _time(mark["until"])
        if since <= arrival <= until:
            out.append(f"arrived {arrival.isoformat()}, after {since.isoformat()}: "
                       f"{mark.get('reason', 'marked by an admin')}")
    return tuple(out)


def fold(lines: Iterable[str], expect: Expectation | None = None) -> Ledger:
    """The ledger from its JSON lines; bad lines are counted, never fatal. With `expect`, each
    entry's suspicion is judged now, with today's expectations (backup.suspect), from the facts
    recorded; the reasons written when it was first seen are for humans reading the file."""
    ledger = Ledger()
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            kind = event["event"]
            if kind == "seen":
                text = str(event.get("declared", ""))
                entry = Entry(
                    id=str(event["id"]), arrival=_time(event["arrival"]),
                    first_seen=_time(event["first_seen"]), declared=text,
                    declared_time=declared_time(text), host=str(event.get("host", "")),
                    tags=tuple(event.get("tags") or ()), paths=tuple(event.get("paths") or ()),
                    size=event.get("size"), suspect=tuple(event.get("suspect") or ()))
                if event.get("unreadable"):
                    entry = replace(entry, suspect=(UNREADABLE,))
                elif expect is not None:
                    entry = replace(entry, suspect=reasons(
                        entry.declared_time, text, entry.arrival, entry.host, entry.tags,
                        entry.paths, expect))
                ledger.entries.setdefault(entry.id, entry)
            elif kind == "gone" and event["id"] in ledger.entries:
                entry = ledger.entries[event["id"]]
                if entry.gone is None:
                    ledger.entries[entry.id] = replace(entry, gone=_time(event["at"]))
            elif kind == "mark":
                _time(event["since"]), _time(event["until"])  # refuse a mark it cannot apply
                ledger.marks.append(event)
            else:
                raise ValueError(f"unknown event {kind!r}")
        except (ValueError, KeyError, TypeError):
            ledger.bad_lines += 1
    for entry_id, entry in list(ledger.entries.items()):
        marked = _marked(entry.arrival, ledger.marks)
        if marked:
            ledger.entries[entry_id] = replace(entry, suspect=entry.suspect + marked)
    return ledger


def load(path: str | Path, expect: Expectation | None = None) -> Ledger:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return fold(f, expect)
    except FileNotFoundError:
        return Ledger()


def append(path: str | Path, events: Sequence[Mapping[str, Any]]) -> None:
    """Append whole lines at once (O_APPEND) and make them durable before returning."""
    if not events:
        return
    data = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def arrivals(repo: str | Path) -> tuple[dict[str, datetime], list[str]]:
    """{snapshot id: arrival} from <repo>/snapshots/, and the names there that are no snapshot."""
    found: dict[str, datetime] = {}
    junk: list[str] = []
    try:
        items = list(os.scandir(Path(repo) / "snapshots"))
    except FileNotFoundError:
        return found, junk
    for item in items:
        if SNAPSHOT_NAME.fullmatch(item.name) and item.is_file(follow_symlinks=False):
            found[item.name] = datetime.fromtimestamp(item.stat(follow_symlinks=False).st_ctime,
                                                      UTC)
        else:
            junk.append(item.name)
    return found, sorted(junk)


def observe(ledger: Ledger, arrived: Mapping[str, datetime], listing: Iterable[Mapping[str, Any]],
            expect: Expectation, now: datetime) -> list[dict[str, Any]]:
    """The events that bring `ledger` up to date with the repository: `seen` for each new
    snapshot file (its claims from `listing`, restic's JSON), `gone` for each file gone."""
    listed = {str(s.get("id")): s for s in listing}
    events: list[dict[str, Any]] = []
    for snapshot_id, ctime in sorted(arrived.items(), key=lambda kv: (kv[1], kv[0])):
        if snapshot_id in ledger.entries:
            continue
        # It cannot have arrived after the ledger saw it: with the real clock this is the
        # ctime; a rotation replaying past nights (`--now`, tests) sees them arrive then.
        arrival = min(ctime, now)
        claim = listed.get(snapshot_id)
        if claim is None:
            events.append({"event": "seen", "id": snapshot_id, "arrival": arrival.isoformat(),
                           "first_seen": now.isoformat(), "declared": "", "host": "",
                           "tags": [], "paths": [], "size": None, "unreadable": True,
                           "suspect": [UNREADABLE]})
            continue
        text = str(claim.get("time", ""))
        tags = [str(t) for t in claim.get("tags") or ()]
        paths = [str(p) for p in claim.get("paths") or ()]
        host = str(claim.get("hostname", ""))
        summary = claim.get("summary") or {}
        size = summary.get("data_added") if isinstance(summary, Mapping) else None
        why = reasons(declared_time(text), text, arrival, host, tags, paths, expect)
        events.append({"event": "seen", "id": snapshot_id, "arrival": arrival.isoformat(),
                       "first_seen": now.isoformat(), "declared": text, "host": host,
                       "tags": tags, "paths": paths,
                       "size": size if isinstance(size, int) else None, "suspect": list(why)})
    for entry in ledger.entries.values():
        if entry.present and entry.id not in arrived:
            events.append({"event": "gone", "id": entry.id, "at": now.isoformat()})
    return events


def mark_event(since: datetime, until: datetime, reason: str) -> dict[str, Any]:
    if since > until:
        raise ValueError(f"since {since.isoformat()} is after {until.isoformat()}")
    return {"event": "mark", "since": since.isoformat(), "until": until.isoformat(),
            "reason": reason, "at": until.isoformat()}


def update(path: str | Path, repo: str | Path, listing: Iterable[Mapping[str, Any]],
           expect: Expectation, now: datetime) -> tuple[Ledger, list[dict[str, Any]], list[str]]:
    """Record what is new in `repo`; returns the folded ledger, the events appended, and the
    names in snapshots/ that are no snapshot (reported, never read)."""
    arrived, junk = arrivals(repo)
    events = observe(load(path), arrived, listing, expect, now)
    append(path, events)
    return load(path, expect), events, junk


def main(argv: Sequence[str] | None = None) -> int:
    from backup.lock import LockHeld, exclusive
    from backup.restic import ResticError
    from backup.storage_site import command_line

    def more(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print the folded ledger (no update)")
        p.add_argument("--mark-since", help="ISO time with offset: every snapshot that arrived "
                                            "from then until now is suspect (fab backup.contain)")
        p.add_argument("--reason", default="arrived after a suspected compromise")

    args, cfg = command_line("backup.ledger", argv, more)
    if cfg is None:
        return 2
    path = Path(cfg.state_dir) / LEDGER_FILE
    if args.mark_since:
        try:
            event = mark_event(_time(args.mark_since), datetime.now(UTC), args.reason)
        except ValueError as error:
            print(f"ledger {cfg.site}: --mark-since: {error}", file=sys.stderr)
            return 2
        with exclusive(str(path) + ".lock", f"ledger of {cfg.site}", wait=60):
            append(path, [event])
        print(f"ledger {cfg.site} on {cfg.tier}: arrivals since {event['since']} marked suspect")
        return 0
    if args.json:
        ledger = load(path, cfg.expect)
        json.dump({"site": cfg.site, "tier": cfg.tier, "bad_lines": ledger.bad_lines,
                   "entries": [e.as_dict() for e in ledger.entries.values()]}, sys.stdout)
        print()
        return 0
    try:
        with exclusive(str(path) + ".lock", f"ledger of {cfg.site}"):
            listing = cfg.restic.snapshots(cfg.repo)
            _, events, junk = update(path, cfg.repo.location, listing, cfg.expect,
                                     datetime.now(UTC))
    except LockHeld:
        return 0  # another update is recording the same arrivals
    except (ResticError, OSError, ValueError) as error:
        print(f"ledger {cfg.site}: FAILED: {error}", file=sys.stderr)
        return 4
    seen = [e for e in events if e["event"] == "seen"]
    suspect = [e for e in seen if e["suspect"]]
    print(f"ledger {cfg.site} on {cfg.tier}: {len(seen)} new, {len(suspect)} suspect, "
          f"{len(events) - len(seen)} gone" + (f"; not snapshots: {', '.join(junk)}" if junk
                                               else ""))
    for e in suspect:
        print(f"  SUSPECT {e['id'][:8]}: {'; '.join(e['suspect'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
