"""Deploy figures for docs/deploy.md: the first deploy of every lab host (fresh hosts, the
baseline role), a no-op re-deploy (goal: <= 15 s for the whole lab), per-host breakdown.

    sudo .venv/bin/python bench/deploy_bench.py [--runs N] [--json] [--keep]

Runs its own lab (prefix hlabd, its own ranges: LAB_DEPLOY_BENCH_PUBLIC_CIDR /
..._PRIVATE_CIDR), so a `make lab` or a test session can stay up meanwhile. The first deploy's
time depends mostly on apt (the lab's proxy cache warm or cold) and the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.run import RunReport  # noqa: E402
from lab.config import STATE_ROOT  # noqa: E402
from lab.testing import lab_session, lab_test_config  # noqa: E402
from tasks.deploy import run_deploy  # noqa: E402


def bench_lab_env(prefix: str, state_dir: Path) -> None:
    os.environ["LAB_PREFIX"] = prefix
    os.environ["LAB_STATE_DIR"] = str(state_dir)


def per_host(report: RunReport) -> dict[str, dict[str, float]]:
    return {r.host: {"seconds": round(r.seconds, 2), "changed": r.changed,
                     "unchanged": r.unchanged, "failed": r.failed,
                     "round_trips": r.round_trips} for r in report.results}


def timed_deploy(**kwargs: object) -> tuple[float, RunReport]:
    start = time.monotonic()
    report = run_deploy("lab", emit=lambda _line: None, **kwargs)  # type: ignore[arg-type]
    return time.monotonic() - start, report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="no-op re-deploys to time (median)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--keep", action="store_true", help="leave the bench lab up afterwards")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("deploy_bench: needs root (it brings up its own lab)", file=sys.stderr)
        return 2
    prefix = "hlabd"
    cfg = lab_test_config(
        prefix=prefix, state_dir=STATE_ROOT / prefix,
        public_cidr=os.environ.get("LAB_DEPLOY_BENCH_PUBLIC_CIDR", "203.0.113.128/26"),
        private_cidr=os.environ.get("LAB_DEPLOY_BENCH_PRIVATE_CIDR", "10.84.0.0/24"))
    figures: dict[str, object] = {}
    session = lab_session(cfg)
    lab = session.__enter__()
    try:
        figures["lab_up_seconds"] = round(lab.up_report.total_seconds, 1) if lab.up_report \
            else None
        bench_lab_env(prefix, cfg.state_dir)
        first_s, first = timed_deploy()
        if not first.ok:
            for r in first.results:
                errors = [r.error] if r.error else [o.error for o in r.outcomes
                                                   if not o.ok and not o.skipped]
                if errors:
                    print(f"first deploy failed on {r.host}: {errors[0][-600:]}",
                          file=sys.stderr)
            return 1
        check_s, check = timed_deploy(check=True)
        noop = [timed_deploy() for _ in range(args.runs)]
        figures.update({
            "hosts": len(first.results),
            "first_deploy_seconds": round(first_s, 1),
            "first_deploy_per_host": per_host(first),
            "check_seconds": round(check_s, 2),
            "noop_deploy_seconds": [round(s, 2) for s, _r in noop],
            "noop_deploy_median_seconds": round(statistics.median(s for s, _r in noop), 2),
            "noop_changes": sum(r.changed for _s, rep in noop for r in rep.results),
            "noop_deploy_per_host": per_host(noop[-1][1]),
        })
    finally:
        if not args.keep:
            session.__exit__(None, None, None)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"lab up: {figures['lab_up_seconds']} s; hosts: {figures['hosts']}")
    print(f"first deploy (fresh hosts, baseline): {figures['first_deploy_seconds']} s")
    print(f"check of a converged lab: {figures['check_seconds']} s")
    print(f"no-op re-deploy: median {figures['noop_deploy_median_seconds']} s over "
          f"{args.runs} runs {figures['noop_deploy_seconds']}, "
          f"{figures['noop_changes']} change(s)")
    print(f"{'host':<20} {'first s':>8} {'changed':>8} {'no-op s':>8} {'round trips':>12}")
    first_rows = figures["first_deploy_per_host"]
    noop_rows = figures["noop_deploy_per_host"]
    assert isinstance(first_rows, dict) and isinstance(noop_rows, dict)
    for host, row in first_rows.items():
        print(f"{host:<20} {row['seconds']:>8} {row['changed']:>8} "
              f"{noop_rows[host]['seconds']:>8} {noop_rows[host]['round_trips']:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
