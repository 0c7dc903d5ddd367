"""Release decisions, pure: which release to stage, reuse, keep, or roll back to.

Shipped to the host with the rest of the helper and imported by the unit tests as plain data
in, plain data out (no I/O), so the rules are tested without a host.

A release is identified by the sha256 of its archive: deploying the same code twice changes
nothing; deploying code that is still kept (after a rollback) switches back to it.
"""
import re

RELEASE_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$")
KEEP = 3  # the live release, the rollback target and one more


def release_id(sha256, now_utc):
    """`20260131T120000Z-0123456789ab`: sorts by creation time, names its content."""
    return "{}-{}".format(now_utc.strftime("%Y%m%dT%H%M%SZ"), sha256[:12])


def plan_deploy(current, releases, sha256, new_id):
    """(action, release id): "none" (already live), "switch" (kept, switch back to it) or
    "stage" (new). `releases`: {id: sha256} of the releases on the host."""
    if current is not None and releases.get(current) == sha256:
        return "none", current
    same = sorted(rid for rid, sha in releases.items() if sha == sha256)
    if same:
        return "switch", same[-1]
    if new_id in releases:
        raise ValueError(f"release {new_id} exists with other content")
    return "stage", new_id


def rollback_target(current, history, existing):
    """The release that was live before the current one and still exists, or None.

    `history`: release ids in the order they went live (oldest first)."""
    for rid in reversed(history):
        if rid != current and rid in existing:
            return rid
    return None


def to_prune(current, history, existing, keep=KEEP):
    """Releases to delete: all but the `keep` most recently live ones; never the current one
    nor its rollback target."""
    order = []
    for rid in reversed(history):
        if rid in existing and rid not in order:
            order.append(rid)
    # Releases never live (a failed deploy's leftovers) go first.
    never_live = sorted(rid for rid in existing if rid not in order)
    kept = set(order[:keep])
    if current is not None:
        kept.add(current)
    target = rollback_target(current, history, existing)
    if target is not None:
        kept.add(target)
    return sorted(set(never_live + order) - kept)
