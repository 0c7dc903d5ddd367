"""nginx's effective configuration as data: `nginx -T` parsed into directives, includes
expanded, plus the two rules of nginx the checks need (which level a directive is inherited
from, which `location` serves a URI). Pure: text in, data out; unit-tested on the rendered
templates (tests/unit/verify), used on live hosts by tests/verify/test_nginx.py.

Why not grep `nginx -T`: a directive's line says nothing about which server or location it
is in, or whether a deeper level overrides it (`add_header` in a location silently drops every
server-level `add_header`).
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

FILE_MARK = re.compile(r"^# configuration file (.+):$")
NGINX_PREFIX = "/etc/nginx/"


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        """Direct children named `name` (this level only)."""
        return [d for d in self.block or () if d.name == name]

    def first(self, name: str) -> Directive | None:
        found = self.all(name)
        return found[0] if found else None


def split_files(dump: str) -> dict[str, str]:
    """`nginx -T` output -> {path: content}, in the order nginx printed them (main first)."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in dump.splitlines():
        m = FILE_MARK.match(line)
        if m:
            current = files.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
    return {path: "\n".join(lines) for path, lines in files.items()}


def _tokens(text: str) -> Iterator[str | tuple[str]]:
    """Words (str) and the punctuation `{`, `}`, `;` (as 1-tuples, so a quoted "{" stays a
    word)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield (c,)
            i += 1
        elif c in "\"'":
            j, out = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n and text[j + 1] in (c, "\\"):
                    j += 1
                out.append(text[j])
                j += 1
            if j >= n:
                raise ValueError(f"unterminated quote at offset {i}")
            yield "".join(out)
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in ";{}":
                if text[j] == "$" and j + 1 < n and text[j + 1] == "{":  # ${var}
                    j = text.index("}", j) + 1
                    continue
                j += 1
            yield text[i:j]
            i = j


def parse(text: str) -> list[Directive]:
    """One file's text -> its directives (no include expansion)."""
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for tok in _tokens(text):
        if isinstance(tok, str):
            words.append(tok)
            continue
        if tok[0] == ";":
            if not words:
                raise ValueError("empty directive")
            stack[-1].append(Directive(words[0], words[1:]))
        elif tok[0] == "{":
            if not words:
                raise ValueError("block without a directive")
            d = Directive(words[0], words[1:], [])
            stack[-1].append(d)
            stack.append(d.block)  # type: ignore[arg-type]
        else:
            if words or len(stack) == 1:
                raise ValueError("unbalanced '}'")
            stack.pop()
        words = []
    if words or len(stack) != 1:
        raise ValueError("unexpected end of configuration")
    return stack[0]


def _expand(directives: list[Directive], files: dict[str, str], depth: int = 0
            ) -> list[Directive]:
    if depth > 10:
        raise ValueError("include nesting too deep")
    out: list[Directive] = []
    for d in directives:
        if d.name == "include" and d.args:
            pattern = d.args[0] if d.args[0].startswith("/") else NGINX_PREFIX + d.args[0]
            for path in sorted(p for p in files if fnmatch.fnmatchcase(p, pattern)):
                out += _expand(parse(files[path]), files, depth + 1)
            continue
        if d.block is not None:
            d.block = _expand(d.block, files, depth)
        out.append(d)
    return out


def load(dump: str) -> Directive:
    """The whole effective configuration from `nginx -T`, as a root pseudo-directive."""
    files = split_files(dump)
    if not files:
        raise ValueError("no '# configuration file' section: is this `nginx -T` output?")
    main = next(iter(files))
    return Directive("main", [], _expand(parse(files[main]), files))


def walk(root: Directive) -> Iterator[tuple[list[Directive], Directive]]:
    """Every directive with its chain of enclosing blocks (outermost first)."""
    def rec(chain: list[Directive], node: Directive) -> Iterator[tuple[list[Directive],
                                                                       Directive]]:
        for d in node.block or ():
            yield chain, d
            if d.block is not None:
                yield from rec([*chain, d], d)
    yield from rec([root], root)


def http(root: Directive) -> Directive:
    block = root.first("http")
    if block is None:
        raise ValueError("no http block")
    return block


def servers(root: Directive) -> list[Directive]:
    return http(root).all("server")


def inherited(levels: Sequence[Directive], name: str) -> list[Directive]:
    """The `name` directives in force at the innermost of `levels` (outermost first): nginx
    takes them from the innermost level that has any, ignoring the outer ones entirely (true
    for array directives like add_header/proxy_set_header and for single ones alike)."""
    for level in reversed(levels):
        found = level.all(name)
        if found:
            return found
    return []


def value(levels: Sequence[Directive], name: str) -> str | None:
    found = inherited(levels, name)
    return " ".join(found[-1].args) if found else None


def listen_address(listen: Directive) -> str:
    return listen.args[0]


def server_names(server: Directive) -> set[str]:
    return {n for d in server.all("server_name") for n in d.args}


def _location_kind(loc: Directive) -> tuple[str, str]:
    """(modifier, pattern): modifier '' for a plain prefix."""
    if len(loc.args) >= 2 and loc.args[0] in ("=", "~", "~*", "^~"):
        return loc.args[0], loc.args[1]
    return "", loc.args[0]


def _pcre(pattern: str) -> str:
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)  # PCRE named groups -> Python


def select_location(server: Directive, uri: str) -> Directive | None:
    """The top-level location of `server` nginx would pick for `uri` (nested locations are not
    followed; the configurations checked here have none): `=` exact, else the longest prefix
    if it is `^~`, else the first matching regex in order, else that longest prefix."""
    prefix: tuple[int, Directive] | None = None
    regexes: list[Directive] = []
    for loc in server.all("location"):
        kind, pattern = _location_kind(loc)
        if kind == "=":
            if pattern == uri:
                return loc
        elif kind in ("~", "~*"):
            regexes.append(loc)
        elif not pattern.startswith("@") and uri.startswith(pattern):
            if prefix is None or len(pattern) > prefix[0]:
                prefix = (len(pattern), loc)
    if prefix is not None and _location_kind(prefix[1])[0] == "^~":
        return prefix[1]
    for loc in regexes:
        kind, pattern = _location_kind(loc)
        if re.search(_pcre(pattern), uri, re.IGNORECASE if kind == "~*" else 0):
            return loc
    return prefix[1] if prefix else None


def refuses(loc: Directive | None) -> bool:
    """The location answers 403/404 itself (`return 403|404` or `deny all`), unconditionally."""
    if loc is None:
        return False
    for d in loc.block or ():
        if d.name == "return" and d.args and d.args[0] in ("403", "404"):
            return True
        if d.name == "deny" and d.args == ["all"]:
            return True
    return False


def size_bytes(text: str) -> int:
    """nginx size syntax: 64m, 512k, 1g, 1024."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    if not m:
        raise ValueError(f"not an nginx size: {text!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[
        m.group(2).lower()]
