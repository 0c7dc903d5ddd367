"""Lab figures for docs/lab.md: image build (cold, cached), all hosts ready, teardown, and the
web tier's packages (nginx, PHP-FPM, MariaDB) installed on every web host at once.

    sudo .venv/bin/python bench/lab_bench.py [--skip-cold] [--json]

Runs its own lab (prefix hlabb, its own ranges) and its own cold image cache, so a `make lab`
or a test session can stay up meanwhile. The install runs twice: through an apt proxy that
may be cold (first run on a machine), then again on fresh hosts with the proxy's cache warm.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.config import STATE_ROOT, LabConfig  # noqa: E402
from lab.image import ensure_image  # noqa: E402
from lab.lab import Lab  # noqa: E402

PACKAGES = "nginx php8.4-fpm mariadb-server"
APT = "sudo -n env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -q -y"


def bench_config() -> LabConfig:
    return LabConfig(prefix="hlabb", state_dir=STATE_ROOT / "hlabb",
                     public_cidr=os.environ.get("LAB_BENCH_PUBLIC_CIDR", "198.51.100.128/26"),
                     private_cidr=os.environ.get("LAB_BENCH_PRIVATE_CIDR", "10.80.0.0/24"))


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - start, result


def install_web_tier(lab: Lab) -> float:
    webs = [h.name for h in lab.plan().hosts if h.plan.role == "web"]

    def install(host: str) -> None:
        proc = lab.ssh(host, f"{APT} update -qq && {APT} install --no-install-recommends "
                             f"{PACKAGES}", timeout=1200)
        if proc.returncode != 0:
            raise RuntimeError(f"{host}: apt-get failed:\n{proc.stdout[-2000:]}\n{proc.stderr}")

    start = time.monotonic()
    with ThreadPoolExecutor(len(webs)) as pool:
        list(pool.map(install, webs))
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-cold", action="store_true", help="no cold image build")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("lab_bench: needs root", file=sys.stderr)
        return 1
    cfg = bench_config()
    figures: dict[str, float | str] = {}

    if not args.skip_cold:
        # A cache of its own: deleting the shared image would pull it from under running labs.
        cold = Path(tempfile.mkdtemp(prefix="lab-bench-image-", dir="/var/tmp"))
        try:
            figures["image_build_cold_s"] = ensure_image(cold, cfg.suite, cfg.mirror)[1]
        finally:
            shutil.rmtree(cold, ignore_errors=True)
    ensure_image(cfg.image_cache, cfg.suite, cfg.mirror)
    figures["image_build_cached_s"], _ = timed(ensure_image, cfg.image_cache, cfg.suite,
                                               cfg.mirror)

    lab = Lab(cfg)
    lab.down()
    try:
        cache = lab.apt.dir / "cache"
        figures["apt_cache_before"] = "warm" if cache.exists() and any(cache.rglob("*.deb")) \
            else "cold"
        figures["up_total_s"], report = timed(lab.up)
        figures["hosts_ready_s"] = report.hosts_seconds
        figures["hosts"] = str(len(lab.plan().hosts))
        figures["web_tier_install_parallel_s"] = install_web_tier(lab)
        figures["teardown_s"], left = timed(lab.down)
        if not left.empty():
            raise RuntimeError(f"teardown left {left}")
        lab.up()
        figures["web_tier_install_parallel_warm_cache_s"] = install_web_tier(lab)
    finally:
        left = lab.down()
    load = os.getloadavg()[0]
    print(f"lab bench ({os.cpu_count()} CPUs, load {load:.1f} at the end)")
    for key, value in figures.items():
        shown = f"{value:.2f}" if isinstance(value, float) else value
        print(f"  {key:42s} {shown}")
    if args.json:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                          for k, v in figures.items()}))
    return 0 if left.empty() else 1


if __name__ == "__main__":
    sys.exit(main())
