"""The web host's part of `fab update` (issue 15; R-MNT-1, R-MNT-2, R-HOST-3, R-GDPR-1/4):

  revert     put a release that went live but failed the update's later checks back: its own
             pre-update database snapshot (taken by hw_release in maintenance mode) becomes the
             live database again and the code goes back to the previous release, by the same
             way back a failed release takes (hw_release._roll_back); the site leaves
             maintenance only when the previous release passes its health check.
  sanitize   run the update's sanitizing SQL on a preproduction copy of the database, then
             look in every text column for an e-mail address outside the allowed domain: any
             left fails the command (and the qualification).
  logmark    the sizes of the PHP and nginx error logs now; `fatals --since` counts the PHP
             fatal errors written after such a mark (no clock involved: bytes appended).

Standard library only (Debian's python3); modules import each other by bare name.
"""
import json
import os
import re
import time

import hw_dbsnap
from hw_release import _roll_back, _Steps
from hw_util import HelperError, utc_now

# Where a PHP fatal error lands: PHP-FPM's own log (workers' errors, log_errors=on and no
# error_log of the pool) and nginx's (FastCGI's "PHP message: PHP Fatal error").
ERROR_LOGS = ("/var/log/php8.4-fpm.log", "/var/log/nginx/error.log")
FATAL = re.compile(rb"PHP Fatal error|PHP Parse error")
TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")
EMAIL_REGEXP = "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\\\.[A-Za-z]{2,}"


def revert(site, rid):
    """Code and database of `rid` (the live release) back to before it, or HelperError."""
    t0 = time.monotonic()
    current = site.current_id()
    if current != rid:
        raise HelperError(f"live release is {current}, not {rid}: refusing to revert")
    meta_path = os.path.join(site.snapshot_dir, rid + ".json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise HelperError(f"no pre-update database snapshot for {rid} ({exc}): the database "
                          "cannot go back; nothing changed") from exc
    previous = _previous(site, rid)
    steps = _Steps()
    report = {"action": "revert", "release": rid, "previous": previous,
              "time": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
              "rolled_back": {"code": False, "db": False}}
    state = {"switched": True, "maintenance": False, "snapshot": meta, "db_changed": True}
    errors = []
    _roll_back(site, report, steps, state, errors, previous,
               os.path.join(site.releases, rid))
    report.update(errors=errors, maintenance=state["maintenance"], timings=steps.timings,
                  result="reverted" if not errors else "revert failed",
                  seconds=round(time.monotonic() - t0, 3))
    site.record(report)
    if errors:
        raise HelperError("revert of {} failed: {}; the site {}".format(
            rid, " | ".join(errors),
            "stays in maintenance" if state["maintenance"] else "is NOT in maintenance"))
    return report


def _previous(site, rid):
    """The release that was live before `rid` (from the switch history)."""
    existing = site.existing()
    for name in reversed(site.history()):
        if name != rid and name in existing:
            return name
    raise HelperError(f"no earlier release than {rid} is kept: nothing to revert to")


# -- sanitize ---------------------------------------------------------------------------------
def email_scan_sql(database, columns, allowed_domain):
    """One query counting, per text column, the values holding an e-mail address whose domain
    is not `allowed_domain` (pure: tested with data)."""
    db = hw_dbsnap.ident(database)
    allowed = re.escape(allowed_domain).replace("\\", "\\\\")
    parts = []
    for table, column in columns:
        t, c = hw_dbsnap.ident(table), hw_dbsnap.ident(column)
        # Allowed addresses are cut out first: a value holding one allowed and one outside
        # address still counts.
        parts.append(
            f"SELECT '{t}', '{c}', COUNT(*) FROM `{db}`.`{t}` WHERE REGEXP_REPLACE(`{c}`, "
            f"'[A-Za-z0-9._%+-]+@{allowed}(?![A-Za-z0-9.-])', '') REGEXP '{EMAIL_REGEXP}'")
    return " UNION ALL\n".join(parts) + ";\n" if parts else ""


def text_columns(database):
    rows = hw_dbsnap.sql(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA="
        f"'{hw_dbsnap.ident(database)}' AND DATA_TYPE IN ({', '.join(map(repr, TEXT_TYPES))}) "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION;\n")
    return [(r[0], r[1]) for r in rows]


def leftover_emails(database, allowed_domain):
    """{"table.column": count} of values still holding an outside e-mail address."""
    query = email_scan_sql(database, text_columns(database), allowed_domain)
    if not query:
        return {}
    return {f"{t}.{c}": int(n) for t, c, n in hw_dbsnap.sql(query) if int(n)}


def sanitize(database, steps_path, allowed_domain):
    """Run the sanitizing steps (a JSON file the admin uploaded: [{"table", "sql"}],
    {"tables_like", "sql"} with `{table}` in the SQL, or {"sql"} run once) on `database`,
    then check. A step whose table does not exist is skipped and named; any SQL error stops
    the command."""
    t0 = time.monotonic()
    try:
        with open(steps_path) as f:
            steps = json.load(f)
    except (OSError, ValueError) as exc:
        raise HelperError(f"--sql-file: cannot read the steps ({exc})") from exc
    present = set(hw_dbsnap.tables(database))
    ran, skipped = [], []
    for step in steps:
        if "tables_like" in step:
            pattern = re.compile(re.escape(step["tables_like"]).replace("%", ".*") + "$")
            targets = sorted(n for n in present if pattern.match(n))
        elif step.get("table"):
            targets = [step["table"]] if step["table"] in present else []
        else:  # a statement of the admin's own: once, as given
            targets = [""]
        if not targets:
            skipped.append(step.get("table") or step["tables_like"])
            continue
        for table in targets:
            statement = step["sql"]
            if table:
                statement = statement.replace("{table}", hw_dbsnap.ident(table))
            hw_dbsnap.sql(statement.rstrip().rstrip(";") + ";\n", database, timeout=1800)
            ran.append(table or "(statement)")
    left = leftover_emails(database, allowed_domain)
    report = {"database": database, "allowed_domain": allowed_domain, "ran": ran,
              "skipped": skipped, "leftover": left, "seconds": round(time.monotonic() - t0, 3)}
    if left:
        raise HelperError("e-mail addresses outside @{} remain after sanitizing: {}".format(
            allowed_domain, ", ".join(f"{k} ({n})" for k, n in sorted(left.items()))))
    return report


# -- PHP fatal errors -------------------------------------------------------------------------
def logmark(paths=ERROR_LOGS):
    return {p: os.path.getsize(p) if os.path.exists(p) else 0 for p in paths}


def fatals(mark, paths=ERROR_LOGS, limit=5):
    """PHP fatal error lines appended to the logs after `mark` ({path: size})."""
    found = []
    for p in paths:
        if not os.path.exists(p):
            continue
        start = int(mark.get(p, 0))
        if os.path.getsize(p) < start:  # rotated since the mark: read it all
            start = 0
        with open(p, "rb") as f:
            f.seek(start)
            found += [line.decode(errors="replace").strip()[:300]
                      for line in f if FATAL.search(line)]
    return {"count": len(found), "lines": found[:limit]}
