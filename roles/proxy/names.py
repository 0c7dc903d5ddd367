"""Which names the sites' certificate must cover. Pure."""
from __future__ import annotations

from collections.abc import Iterable


def covers(pattern: str, name: str) -> bool:
    """RFC 6125 matching: a wildcard stands for exactly one left-most label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def certificate_names(site_names: Iterable[str]) -> tuple[str, ...]:
    """The wildcard of the sites' common parent domain plus that domain itself, and any site
    name the wildcard does not cover (R-SCOPE-2: `*.villeparisis.fr` covers both sites)."""
    names = sorted({n.lower() for n in site_names})
    if not names:
        raise ValueError("no site names")
    split = [n.split(".") for n in names]
    common: list[str] = []
    for labels in zip(*(reversed(s) for s in split), strict=False):
        if len(set(labels)) != 1:
            break
        common.insert(0, labels[0])
    # The shortest name is the apex when every other name is under it (villeparisis.fr).
    parent = ".".join(common) if len(common) >= 2 else ""
    out = [f"*.{parent}", parent] if parent else []
    out += [n for n in names if not any(covers(p, n) for p in out)]
    return tuple(dict.fromkeys(out))


def uncovered(sans: Iterable[str], site_names: Iterable[str]) -> list[str]:
    sans = list(sans)
    return [n for n in site_names if not any(covers(s, n) for s in sans)]
