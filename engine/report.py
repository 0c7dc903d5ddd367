"""What the operator reads: one progress line per host, the details (check mode: actions and
diffs; apply: failures, or every op result with its change), and the summary table. Pure
string formatting."""
from __future__ import annotations

from collections.abc import Sequence

from engine.converge import HostResult


def progress_line(r: HostResult) -> str:
    if r.error:
        return f"FAIL {r.host:<20} {r.error}  ({r.seconds:.1f}s)"
    verb = "would change" if r.check else "changed"
    status = "ok  " if r.ok else "FAIL"
    extra = f", {r.failed} failed" if r.failed else ""
    extra += f", {r.not_run} not run" if r.not_run else ""
    return (f"{status} {r.host:<20} {r.changed} {verb}, {r.unchanged} unchanged{extra}  "
            f"({r.seconds:.1f}s)")


def details(r: HostResult, verbose: bool = False) -> str:
    """Check mode: every action and its diff. Apply: what was done (verbose) and every failure."""
    if r.plan is None:
        return ""
    lines: list[str] = []
    if r.check:
        if not r.plan.actions:
            return ""
        lines.append(f"== {r.host}: {len(r.plan.actions)} action(s) would run")
        for a in r.plan.actions:
            notify = f"  [then: {', '.join(a.notify)}]" if a.notify else ""
            lines.append(f"  * {a.summary}{notify}")
        for h in r.plan.handlers:
            lines.append(f"  * handler {h.name} (once)")
        for a in r.plan.actions:
            if a.diff:
                lines.append(a.diff.rstrip("\n"))
    else:
        shown = [o for o in r.outcomes if verbose or not o.ok]
        if shown:
            lines.append(f"== {r.host}")
        for o in shown:
            mark = (("changed" if o.changed else "no change") if o.ok
                    else ("not run" if o.skipped else "FAILED"))
            lines.append(f"  [{mark}] {o.summary}" + (f": {o.error}" if o.error and
                                                      not o.skipped else ""))
    if verbose and r.plan.notes:
        lines += [f"  note: {n}" for n in r.plan.notes]
    return "\n".join(lines)


def notes_summary(results: Sequence[HostResult]) -> list[str]:
    """Skipped steps, said once with the hosts they apply to (container skips in the lab)."""
    lines: dict[str, list[str]] = {}  # line -> hosts
    for r in results:
        if r.plan is None:
            continue
        grouped: dict[str, list[str]] = {}
        for n in r.plan.notes:
            if n.group:
                grouped.setdefault(n.group, []).append(n.text)
            else:
                lines.setdefault(n.text, []).append(r.host)
        for group, items in grouped.items():
            lines.setdefault(f"{group}: {', '.join(items)}", []).append(r.host)
    return [f"note: {text} [{', '.join(hosts)}]" for text, hosts in lines.items()]


def summary_table(results: Sequence[HostResult], wall_seconds: float, check: bool) -> str:
    head = ("host", "would change" if check else "changed", "unchanged", "failed", "seconds")
    rows = [(r.host, str(r.changed), str(r.unchanged), str(r.failed), f"{r.seconds:.1f}")
            for r in results]
    rows.append(("TOTAL", str(sum(r.changed for r in results)),
                 str(sum(r.unchanged for r in results)), str(sum(r.failed for r in results)),
                 f"{wall_seconds:.1f}"))
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=False)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *map(fmt, rows[:-1]), rule, fmt(rows[-1])])
