"""Benchmark: build the Pulumi program under mocks for 1, 20 and 200 sites (issue 2).

    .venv/bin/python bench/infra_bench.py [SIZES...]

Configs are generated from Pulumi.prod.yaml and checked by the real model parser: a private
network big enough for the sites (web hosts are numbered from .100: a /22 up to ~900 sites) and
one /32 Additional IP block per site (the most resources per site: each its own attachment),
taken from 198.18.0.0/15, the range RFC 2544 sets aside for benchmarks. Prints, per size, the
resources registered, the seconds to build (register every resource and compute the inventory
output) and the seconds the policy rules take over the result. Not a timed test: figures
depend on the machine.
"""
from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

with warnings.catch_warnings():  # the provider SDKs warn about their own deprecated aliases
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack  # noqa: F401, E402
    import pulumi_ovh  # noqa: F401, E402

from infra.mockrun import build_under_mocks  # noqa: E402
from infra.policies import check_all, context_from_stack  # noqa: E402
from model import Stack, parse_stack  # noqa: E402


def stack_with_sites(n: int) -> Stack:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    config = doc["config"]
    template = config["hosting:sites"][1]
    ips = [IPv4Address("198.18.0.1") + i for i in range(n)]
    prefix = min(22, 32 - math.ceil(math.log2(100 + n + 2)))
    config["hosting:network"].update(private_cidr=f"10.20.0.0/{prefix}",
                                     public_ip_blocks=[f"{ip}/32" for ip in ips])
    config["hosting:sites"] = [
        {**copy.deepcopy(template), "name": f"site{i}", "domain": f"site{i}.villeparisis.fr",
         "aliases": [f"www.site{i}.villeparisis.fr"], "public_ip": str(ips[i]),
         "database": {"name": f"site{i}"}, "host_number": 100 + i} for i in range(n)]
    return parse_stack(yaml.safe_dump(doc, sort_keys=False), "Pulumi.prod.yaml")


def measure(n: int) -> tuple[int, float, float]:
    stack = stack_with_sites(n)
    start = time.perf_counter()
    built = build_under_mocks(stack)
    built_s = time.perf_counter() - start
    start = time.perf_counter()
    problems = check_all(built.policy_view(), context_from_stack(stack))
    policy_s = time.perf_counter() - start
    if any(problems.values()):
        raise SystemExit(f"{n} sites: policy violations: {problems}")
    return len(built.resources), built_s, policy_s


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1, 20, 200]
    measure(1)  # warm-up: the provider SDKs load their modules lazily on first use
    print(f"{'sites':>6} {'resources':>10} {'build s':>9} {'policies s':>11}")
    for n in sizes:
        count, built_s, policy_s = measure(n)
        print(f"{n:>6} {count:>10} {built_s:>9.2f} {policy_s:>11.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
