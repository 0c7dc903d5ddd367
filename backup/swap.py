"""The files half of a restore: restored into side directories, then swapped in by rename.

Each restored path (code releases, the `current` link, public files, config sync, private
files) is first restored by `restic restore --verify` into a side directory ON THE SAME
FILESYSTEM as its live place, so the swap is a rename (instant, nothing copied):
  * a plain path P under the site's root: side `<root>/.restore-<token>/<P>`; the swap renames
    P to `<root>/.prerestore-<token>/<P>` then the restored one to P;
  * a mount point (the gocryptfs plaintext view of the private files, R-GDPR-1): the mount
    point itself cannot be renamed, and a side directory outside it would write personal data
    unencrypted. Its side is `<mount>/.restore-<token>`, INSIDE the mounted filesystem (so the
    data is encrypted on disk from the first byte), and the swap moves the mount's entries to
    `<mount>/.prerestore-<token>/` and the restored entries in, one rename each.
Every rename done is journaled; any failure undoes them in reverse order (swap_back). The
kept `.prerestore-*` directories are removed only when the whole restore succeeded.
Standard library only (runs on the hosts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

SIDE_PREFIX = ".restore-"
OLD_PREFIX = ".prerestore-"


class SwapError(RuntimeError):
    pass


@dataclass(frozen=True)
class Group:
    """Paths restored by one `restic restore` into one side directory."""

    base: str  # the directory holding the side and old directories (root or a mount)
    paths: tuple[str, ...]
    mount: str | None = None  # the paths ARE this mount point: its entries are swapped

    def side(self, token: str) -> str:
        return os.path.join(self.base, SIDE_PREFIX + token)

    def old(self, token: str) -> str:
        return os.path.join(self.base, OLD_PREFIX + token)


def plan(root: str, paths: Sequence[str], mounts: Sequence[str]) -> list[Group]:
    """Group the restored paths by the filesystem they live on (pure).

    A path that is a mount point, or lies inside one, is restored inside that mount; the
    others inside `root`. Raises SwapError for a path outside the root."""
    root = root.rstrip("/")
    by_base: dict[tuple[str, str | None], list[str]] = {}
    for path in paths:
        if path != root and not path.startswith(root + "/"):
            raise SwapError(f"restore path {path} is outside the site's root {root}")
        mount = next((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")),
                     None)
        if mount is None:
            by_base.setdefault((root, None), []).append(path)
        elif path == mount:
            by_base.setdefault((mount, mount), []).append(path)
        else:
            by_base.setdefault((mount, None), []).append(path)
    return [Group(base, tuple(ps), mount) for (base, mount), ps in by_base.items()]


def restored_path(group: Group, token: str, path: str) -> str:
    """Where `restic restore --target <side>` puts `path` (restic keeps absolute paths)."""
    return group.side(token) + path


def leftovers(groups: Sequence[Group]) -> tuple[list[str], list[str]]:
    """(side directories of an earlier restore: safe to remove, kept live data of an earlier
    restore cut between its swap and its end: must never be removed silently)."""
    sides, olds = [], []
    for group in groups:
        try:
            names = os.listdir(group.base)
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith(SIDE_PREFIX):
                sides.append(os.path.join(group.base, name))
            elif name.startswith(OLD_PREFIX):
                olds.append(os.path.join(group.base, name))
    return sides, olds


def make_side(group: Group, token: str) -> str:
    """The side directory, root-only, checked to be on the filesystem of its live paths."""
    side = group.side(token)
    os.makedirs(group.base, exist_ok=True)
    os.mkdir(side, 0o700)
    dev = os.stat(side).st_dev
    for path in group.paths:
        parent = group.base if group.mount else os.path.dirname(path)
        if os.path.isdir(parent) and os.stat(parent).st_dev != dev:
            raise SwapError(f"{side} and {path} are on different filesystems: the swap "
                            "could not be a rename")
    return side


@dataclass
class FileSwap:
    groups: list[Group]
    token: str
    journal: list[tuple[str, str]] = field(default_factory=list)

    def _move(self, src: str, dst: str) -> None:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        self.journal.append((src, dst))

    def check(self) -> None:
        """Every restored path is there (a snapshot without one would swap in nothing)."""
        missing = [p for g in self.groups for p in g.paths
                   if not os.path.lexists(restored_path(g, self.token, p))]
        if missing:
            raise SwapError(f"not in the restored snapshot: {', '.join(missing)}; "
                            "live files untouched")

    def swap_in(self) -> int:
        """Renames only; returns how many. Raises (after undoing its own renames)."""
        try:
            for group in self.groups:
                old = group.old(self.token)
                os.mkdir(old, 0o700)
                self.journal.append(("", old))
                for path in group.paths:
                    new = restored_path(group, self.token, path)
                    if group.mount:
                        for name in sorted(os.listdir(path)):
                            if name.startswith((SIDE_PREFIX, OLD_PREFIX)):
                                continue
                            self._move(os.path.join(path, name), os.path.join(old, name))
                        for name in sorted(os.listdir(new)):
                            self._move(os.path.join(new, name), os.path.join(path, name))
                    else:
                        if os.path.lexists(path):
                            self._move(path, old + path)
                        self._move(new, path)
        except OSError as error:
            undo_errors = self.swap_back()
            raise SwapError(f"swapping the files in failed: {error}"
                            + (f"; UNDO FAILED: {'; '.join(undo_errors)}" if undo_errors
                               else "; every rename undone, live files as they were")) from None
        return sum(1 for src, _dst in self.journal if src)

    def swap_back(self) -> list[str]:
        """Undo every journaled rename, newest first; returns the errors (none lost)."""
        errors = []
        while self.journal:
            src, dst = self.journal.pop()
            try:
                if src:
                    os.rename(dst, src)
                else:
                    _remove_empty_tree(dst)
            except OSError as error:
                errors.append(f"{dst} -> {src or '(remove)'}: {error}")
        return errors

    def finish(self) -> list[str]:
        """Success: the kept old files and the emptied side directories go."""
        self.journal.clear()
        return remove(self.groups, self.token)


def _remove_empty_tree(top: str) -> None:
    """Remove `top` and the directories under it, all of which must be empty of files (the
    parents the swap made for the paths it moved there). OSError otherwise."""
    for root, dirs, files in os.walk(top, topdown=False):
        if files:
            raise OSError(f"{root} still holds {', '.join(sorted(files)[:3])}")
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(top)


def remove(groups: Sequence[Group], token: str) -> list[str]:
    errors: list[str] = []
    for group in groups:
        for path in (group.old(token), group.side(token)):
            if os.path.lexists(path):
                try:
                    shutil.rmtree(path)
                except OSError as error:
                    errors.append(f"removing {path}: {error}")
    return errors
