"""The `User` primitive: a local account (one Unix user per site, R-GDPR-4).

Facts: the account's home, shell and supplementary groups. Decision: `useradd`, or `usermod`
for what differs (groups are only added). On-host op: `command`.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.facts import FactRequest, HostFacts, UserFact
from engine.primitives.common import Action, Decision, command_op

OPS = ("command",)


@dataclass(frozen=True)
class User:
    name: str
    home: str
    shell: str = "/usr/sbin/nologin"
    system: bool = True
    groups: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"user:{self.name}"


RESOURCE = User


def request(r: User, check: bool) -> FactRequest:
    return FactRequest(users=(r.name,))


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


def decide(r: User, facts: HostFacts) -> Decision:
    return decide_user(r, facts.users.get(r.name, UserFact()))
