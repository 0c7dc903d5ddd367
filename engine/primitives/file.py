"""The `File` primitive: a regular file with exact content, mode and owner.

Facts: the path's attributes and its sha256, computed on the host; its content only in check
mode (for the diff), never for a sensitive file. Decision: write it when the digest differs,
fix mode/owner when only they differ. On-host ops: `write` (temporary file beside the target,
`validate` on it, atomic rename) and `attrs` (onhost/agent.py).
"""
from __future__ import annotations

import base64
import difflib
import hashlib
from dataclasses import dataclass

from engine.facts import FactRequest, HostFacts, PathFact
from engine.primitives.common import Action, Decision, attrs_delta, attrs_op
from onhost.agent import MAX_CONTENT

OPS = ("write", "attrs")


@dataclass(frozen=True)
class File:
    """A regular file with exact content, mode and owner.

    `validate` is a shell command run ON THE HOST against the new content in a temporary file
    beside the target (`{}` is replaced by its path), e.g. ``sshd -t -f {}``: if it fails, the
    live file is left untouched and the host fails. The replacement is an atomic rename.
    `create_only` writes the file only when it is missing (a KRL a deploy must never roll back).
    `sensitive` hides the content from diffs and logs.
    """

    path: str
    content: str | bytes = ""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    validate: str | None = None
    notify: tuple[str, ...] = ()
    create_only: bool = False
    sensitive: bool = False

    @property
    def key(self) -> str:
        return f"file:{self.path}"

    @property
    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


RESOURCE = File


def request(r: File, check: bool) -> FactRequest:
    # Content comes back for the check-mode diff only, a sensitive file's never.
    return FactRequest(paths=(r.path,),
                       contents=(r.path,) if check and not r.sensitive else ())


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


def decide_file(r: File, fact: PathFact) -> Decision:
    if r.create_only and fact.exists:
        return []
    data = r.data
    # By digest: the agent computes the file's sha256 on the host.
    same_content = (fact.exists and fact.kind == "file"
                    and fact.sha256 == hashlib.sha256(data).hexdigest())
    if not same_content:
        what = "create" if not fact.exists else "write"
        detail = [] if not fact.exists else ["content"] + (
            attrs_delta(fact, r.mode, r.owner, r.group) if fact.kind == "file" else [])
        validated = f", validated by `{r.validate}`" if r.validate else ""
        summary = f"{what} {r.path} ({', '.join(detail) or f'mode {r.mode:04o}'}{validated})"
        op = {"kind": "write", "path": r.path, "content_b64": base64.b64encode(data).decode(),
              "mode": r.mode, "owner": r.owner, "group": r.group, "validate": r.validate}
        return [Action(r.key, summary, op, file_diff(r.path, fact, data, r.sensitive), r.notify)]
    delta = attrs_delta(fact, r.mode, r.owner, r.group)
    if delta:
        return [Action(r.key, f"chmod/chown {r.path} ({', '.join(delta)})",
                       attrs_op(r.path, r.mode, r.owner, r.group), "", r.notify)]
    return []


def decide(r: File, facts: HostFacts) -> Decision:
    return decide_file(r, facts.path(r.path))
