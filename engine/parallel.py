"""Converge many hosts at once (threads: the work is SSH waits and remote apt runs)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from engine.converge import HostResult
from engine.report import progress_line

MAX_WORKERS = 16


def run_all(hosts: Sequence[str], work: Callable[[str], HostResult],
            emit: Callable[[str], None] = print, workers: int = 0) -> list[HostResult]:
    """Run `work(host)` for every host in parallel; print one line per host as it finishes.
    Results come back in the order of `hosts`. `work` must not raise (converge() doesn't);
    if it does anyway, the host is reported failed and the others go on."""
    lock = threading.Lock()
    results: dict[str, HostResult] = {}
    n = workers or min(MAX_WORKERS, max(1, len(hosts)))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="deploy") as pool:
        futures = {pool.submit(work, h): h for h in hosts}
        for fut in as_completed(futures):
            host = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a bug in one host's work, not all
                res = HostResult(host=host, error=f"{type(exc).__name__}: {exc}")
            results[host] = res
            with lock:
                emit(progress_line(res))
    return [results[h] for h in hosts]
