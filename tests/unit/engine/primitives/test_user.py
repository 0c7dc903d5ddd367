"""The User primitive's decision (engine/primitives/user.py)."""
from __future__ import annotations

from engine.facts import UserFact
from engine.primitives.common import Action, Note
from engine.primitives.user import User, decide_user


def argv(action: Action | Note) -> list[str]:
    assert isinstance(action, Action)
    return list(action.op["argv"])


def test_decide_user_missing_is_created_as_a_system_user_with_its_group() -> None:
    [action] = decide_user(User("villeparisis", "/srv/villeparisis", groups=("www-data",)),
                           UserFact())
    assert argv(action) == ["useradd", "--system", "--home-dir", "/srv/villeparisis",
                            "--create-home", "--shell", "/usr/sbin/nologin", "--user-group",
                            "--groups", "www-data", "--", "villeparisis"]


def test_decide_user_as_wanted_does_nothing() -> None:
    fact = UserFact(True, "/srv/s", "/usr/sbin/nologin", ("s", "www-data"))
    assert decide_user(User("s", "/srv/s", groups=("www-data",)), fact) == []


def test_decide_user_other_shell_and_missing_group_one_usermod() -> None:
    fact = UserFact(True, "/srv/s", "/bin/bash", ("s",))
    [action] = decide_user(User("s", "/srv/s", groups=("www-data",)), fact)
    assert argv(action) == ["usermod", "--shell", "/usr/sbin/nologin", "--append", "--groups",
                            "www-data", "--", "s"]
