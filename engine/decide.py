"""Decisions: desired state + facts -> the actions that make the host match. Pure functions.

Each `decide_*` takes one resource and the facts about it and returns a list of Actions (empty:
nothing to do) or Notes (a step knowingly skipped, e.g. a non-net sysctl in a container).
`decide()` does a whole host: merges package installs into one apt-get run, and attaches each
handler to the actions that notify it. Tested with plain data, no SSH (tests/unit/engine).
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.facts import CommandFact, HostFacts, PathFact, UnitFact, UserFact
from engine.resources import (
    Absent,
    Directory,
    File,
    Handler,
    Packages,
    Probe,
    Resource,
    Service,
    Sysctl,
    User,
)
from onhost.agent import MAX_CONTENT

APT_TIMEOUT = 900  # seconds: a stuck mirror must fail the host, not hang the deploy
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}
# Unit file states that need no `systemctl enable` (static units cannot be enabled at all).
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "static", "indirect", "generated",
                            "alias", "linked", "transient"})
RUNNING_STATES = frozenset({"active", "activating", "reloading"})
CONTAINER_SYSCTL = ("sysctls skipped in a container (systemd-detect-virt -c): only net.* can "
                    "be set there")


@dataclass(frozen=True)
class Action:
    key: str  # the resource it comes from
    summary: str  # one line for humans: "write /etc/ssh/sshd_config (content)"
    op: Mapping[str, Any]  # what the agent executes (onhost/agent.py OPS)
    diff: str = ""
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    """A step knowingly not taken. Notes sharing a `group` are reported on one line."""

    key: str
    text: str
    group: str = ""

    def __str__(self) -> str:
        return f"{self.group}: {self.text}" if self.group else self.text


@dataclass(frozen=True)
class HandlerRun:
    name: str
    op: Mapping[str, Any]
    after: tuple[int, ...]  # indexes of the actions that notify it


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    handlers: tuple[HandlerRun, ...] = ()
    notes: tuple[Note, ...] = ()
    changed: tuple[str, ...] = ()  # resource keys with at least one action
    unchanged: tuple[str, ...] = ()

    @property
    def is_noop(self) -> bool:
        return not self.actions


Decision = list[Action | Note]


def command_op(argv: Sequence[str], timeout: int = 300,
               env: Mapping[str, str] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"kind": "command", "argv": list(argv), "timeout": timeout}
    if env:
        op["env"] = dict(env)
    return op


# --- files ---


def file_diff(path: str, old: PathFact, new: bytes, sensitive: bool = False) -> str:
    """What check mode shows. A sensitive file's content never reached this machine (the
    agent does not send it): its diff says only that it changed."""
    on_host = old.exists and old.kind == "file"
    if sensitive:
        if on_host:
            return f"--- {path}: (sensitive: content differs, sha256 changed)\n"
        return f"--- {path}: (sensitive: new file, content not shown)\n"
    if on_host and old.data is None:
        why = (f"larger than the agent sends back ({old.size} bytes)" if old.size > MAX_CONTENT
               else "content not fetched (only --check fetches it)")
        return (f"--- {path}: {why}; sha256 {old.sha256[:12]} -> "
                f"{hashlib.sha256(new).hexdigest()[:12]}\n")
    before = old.data if old.exists and old.kind == "file" and old.data is not None else b""
    try:
        a, b = before.decode("utf-8"), new.decode("utf-8")
    except UnicodeDecodeError:
        return (f"--- {path}: binary content differs (sha256 "
                f"{hashlib.sha256(before).hexdigest()[:12]} -> "
                f"{hashlib.sha256(new).hexdigest()[:12]})\n")
    fromfile = f"{path} (on host)" if old.exists else "/dev/null"
    lines = difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                 fromfile=fromfile, tofile=f"{path} (wanted)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def _attrs_delta(old: PathFact, mode: int, owner: str, group: str) -> list[str]:
    delta = []
    if old.mode != mode:
        delta.append(f"mode {old.mode:04o}->{mode:04o}")
    if (old.owner, old.group) != (owner, group):
        delta.append(f"owner {old.owner}:{old.group}->{owner}:{group}")
    return delta


def decide_file(r: File, fact: PathFact) -> Decision:
    if r.create_only and fact.exists:
        return []
    data = r.data
    # By digest: the agent computes the file's sha256 on the host and sends its content back
    # only for check-mode diffs (engine.facts.request_for).
    same_content = (fact.exists and fact.kind == "file"
                    and fact.sha256 == hashlib.sha256(data).hexdigest())
    if not same_content:
        what = "create" if not fact.exists else "write"
        detail = [] if not fact.exists else ["content"] + (
            _attrs_delta(fact, r.mode, r.owner, r.group) if fact.kind == "file" else [])
        validated = f", validated by `{r.validate}`" if r.validate else ""
        summary = f"{what} {r.path} ({', '.join(detail) or f'mode {r.mode:04o}'}{validated})"
        op = {"kind": "write", "path": r.path, "content_b64": base64.b64encode(data).decode(),
              "mode": r.mode, "owner": r.owner, "group": r.group, "validate": r.validate}
        return [Action(r.key, summary, op, file_diff(r.path, fact, data, r.sensitive), r.notify)]
    delta = _attrs_delta(fact, r.mode, r.owner, r.group)
    if delta:
        op = {"kind": "attrs", "path": r.path, "mode": r.mode, "owner": r.owner, "group": r.group}
        return [Action(r.key, f"chmod/chown {r.path} ({', '.join(delta)})", op, "", r.notify)]
    return []


def decide_absent(r: Absent, fact: PathFact) -> Decision:
    if not fact.exists:
        return []
    return [Action(r.key, f"remove {r.path}", {"kind": "remove", "path": r.path},
                   file_diff(r.path, fact, b"") if fact.kind == "file" else "", r.notify)]


def decide_directory(r: Directory, fact: PathFact) -> Decision:
    op = {"kind": "mkdir", "path": r.path, "mode": r.mode, "owner": r.owner, "group": r.group}
    if not fact.exists:
        return [Action(r.key, f"create directory {r.path} (mode {r.mode:04o})", op)]
    if fact.kind != "dir":
        return [Action(r.key, f"{r.path} is a {fact.kind}, not a directory", op)]
    delta = _attrs_delta(fact, r.mode, r.owner, r.group)
    if delta:
        return [Action(r.key, f"chmod/chown {r.path} ({', '.join(delta)})",
                       {**op, "kind": "attrs"})]
    return []


# --- packages, services, kernel, users ---


def apt_install_op(names: Sequence[str]) -> dict[str, Any]:
    quoted = " ".join(shlex.quote(n) for n in names)
    # --force-confold: a package upgrade never overwrites a config file a role manages.
    script = (f"timeout 300 apt-get update -q && timeout {APT_TIMEOUT} apt-get install -y -q "
              "--no-install-recommends -o Dpkg::Options::=--force-confdef "
              f"-o Dpkg::Options::=--force-confold -- {quoted}")
    return command_op(["sh", "-c", script], timeout=APT_TIMEOUT + 360, env=APT_ENV)


def decide_packages(r: Packages, installed: Mapping[str, str | None]) -> Decision:
    if r.present:
        missing = [n for n in r.names if not installed.get(n)]
        if not missing:
            return []
        return [Action(r.key, f"install {' '.join(missing)}", apt_install_op(missing))]
    present = [n for n in r.names if installed.get(n)]
    if not present:
        return []
    script = f"timeout {APT_TIMEOUT} apt-get purge -y -q -- {' '.join(map(shlex.quote, present))}"
    return [Action(r.key, f"purge {' '.join(present)}",
                   command_op(["sh", "-c", script], APT_TIMEOUT + 60, APT_ENV))]


def decide_service(r: Service, unit: UnitFact) -> Decision:
    exists = unit.load_state != "not-found"
    is_masked = unit.load_state == "masked" or unit.unit_file_state == "masked"
    running = unit.active_state in RUNNING_STATES
    notes: Decision = [Note(r.key, r.reason)] if r.reason else []
    if r.masked:
        if not exists or (is_masked and not running):
            return notes
        return [*notes, Action(r.key, f"stop and mask {r.unit} (not in the minimal set)",
                               command_op(["systemctl", "mask", "--now", "--", r.unit]))]
    out: Decision = list(notes)
    if is_masked and (r.enabled or r.running):
        out.append(Action(r.key, f"unmask {r.unit}",
                          command_op(["systemctl", "unmask", "--", r.unit])))
    want_enable = r.enabled is True and (unit.unit_file_state not in ENABLED_STATES or is_masked)
    want_start = r.running is True and not running
    if want_enable and want_start:
        out.append(Action(r.key, f"enable and start {r.unit}",
                          command_op(["systemctl", "enable", "--now", "--", r.unit])))
    elif want_enable:
        out.append(Action(r.key, f"enable {r.unit}",
                          command_op(["systemctl", "enable", "--", r.unit])))
    elif want_start:
        out.append(Action(r.key, f"start {r.unit}",
                          command_op(["systemctl", "start", "--", r.unit])))
    if r.enabled is False and unit.unit_file_state in ("enabled", "enabled-runtime"):
        out.append(Action(r.key, f"disable {r.unit}",
                          command_op(["systemctl", "disable", "--", r.unit])))
    if r.running is False and running:
        out.append(Action(r.key, f"stop {r.unit}", command_op(["systemctl", "stop", "--", r.unit])))
    return out


def decide_sysctl(r: Sysctl, current: str | None, in_container: bool) -> Decision:
    if in_container and not r.container_safe:
        return [Note(r.key, r.key_name, CONTAINER_SYSCTL)]
    if current is None:
        return [Note(r.key, r.key_name, "sysctls skipped: not present on this kernel")]
    wanted = " ".join(r.value.split())
    if current == wanted:
        return []
    return [Action(r.key, f"sysctl {r.key_name} {current} -> {wanted}",
                   {"kind": "sysctl", "key": r.key_name, "value": wanted}, "", r.notify)]


def decide_user(r: User, u: UserFact) -> Decision:
    if not u.exists:
        argv = ["useradd", *(["--system"] if r.system else []), "--home-dir", r.home,
                "--create-home", "--shell", r.shell, "--user-group"]
        if r.groups:
            argv += ["--groups", ",".join(r.groups)]
        return [Action(r.key, f"create user {r.name}", command_op([*argv, "--", r.name]))]
    argv = ["usermod"]
    delta = []
    if u.shell != r.shell:
        argv += ["--shell", r.shell]
        delta.append(f"shell {u.shell}->{r.shell}")
    if u.home != r.home:
        argv += ["--home", r.home]
        delta.append(f"home {u.home}->{r.home}")
    missing = [g for g in r.groups if g not in u.groups]
    if missing:
        argv += ["--append", "--groups", ",".join(missing)]
        delta.append(f"groups +{','.join(missing)}")
    if not delta:
        return []
    return [Action(r.key, f"modify user {r.name} ({', '.join(delta)})",
                   command_op([*argv, "--", r.name]))]


def decide_probe(r: Probe, out: CommandFact | None, expected: PathFact) -> Decision:
    live = (out.out if out else "").strip()
    want = (expected.data or b"").decode("utf-8", "replace").strip() if expected.exists else ""
    if out is not None and out.rc == 0 and expected.exists and live == want:
        return []
    why = "no record of the last apply" if not expected.exists else "live state differs"
    diff = "".join(difflib.unified_diff(
        (live + "\n").splitlines(keepends=True), (want + "\n").splitlines(keepends=True),
        fromfile=f"{r.name} (live)", tofile=f"{r.name} (as last applied: {r.expect_from})"))
    return [Action(r.key, r.summary or f"{r.name}: {why}", {"kind": "noop"}, diff, r.notify)]


# --- a whole host ---


def decide_one(r: Resource, facts: HostFacts) -> Decision:
    if isinstance(r, File):
        return decide_file(r, facts.path(r.path))
    if isinstance(r, Absent):
        return decide_absent(r, facts.path(r.path))
    if isinstance(r, Directory):
        return decide_directory(r, facts.path(r.path))
    if isinstance(r, Packages):
        return decide_packages(r, facts.packages)
    if isinstance(r, Service):
        return decide_service(r, facts.units.get(r.unit, UnitFact()))
    if isinstance(r, Sysctl):
        return decide_sysctl(r, facts.sysctls.get(r.key_name), facts.system.in_container)
    if isinstance(r, User):
        return decide_user(r, facts.users.get(r.name, UserFact()))
    if isinstance(r, Probe):
        return decide_probe(r, facts.commands.get(r.name), facts.path(r.expect_from))
    raise TypeError(f"unknown resource {r!r}")


def decide(resources: Sequence[Resource], handlers: Sequence[Handler],
           facts: HostFacts) -> Plan:
    """Every action a host needs, in the roles' order, with one apt-get run for all missing
    packages (at the place of the first package resource) and each notified handler once."""
    keys = [r.key for r in resources]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"a resource is declared twice: {', '.join(dupes)}")
    actions: list[Action] = []
    notes: list[Note] = []
    changed: list[str] = []
    install_at: int | None = None
    to_install: list[str] = []
    for r in resources:
        decision = decide_one(r, facts)
        notes += [d for d in decision if isinstance(d, Note)]
        acts = [d for d in decision if isinstance(d, Action)]
        if acts:
            changed.append(r.key)
        if isinstance(r, Packages) and r.present:
            if install_at is None:
                install_at = len(actions)
                actions.append(Action("packages", "", {}))  # placeholder, filled below
            to_install += [n for n in r.names if not facts.packages.get(n)]
            continue
        actions += acts
    if install_at is not None:
        names = list(dict.fromkeys(to_install))
        if names:
            actions[install_at] = Action("packages", f"install {' '.join(names)}",
                                         apt_install_op(names))
        else:
            del actions[install_at]
    known = {h.name for h in handlers}
    for a in actions:
        unknown = set(a.notify) - known
        if unknown:
            raise ValueError(f"{a.key} notifies unknown handler(s) {sorted(unknown)}")
    runs = []
    for h in handlers:
        after = tuple(i for i, a in enumerate(actions) if h.name in a.notify)
        if after:
            runs.append(HandlerRun(h.name, command_op(h.argv, h.timeout), after))
    unchanged = [k for k in keys if k not in changed]
    return Plan(tuple(actions), tuple(runs), tuple(notes), tuple(changed), tuple(unchanged))
