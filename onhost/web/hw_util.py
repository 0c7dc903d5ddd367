"""Shared helpers of the web host's helper (stdlib only: runs with Debian's python3, no pip).

Secrets are created here, on the host, and never leave it: nothing is ever passed on a
command line (visible in `ps` and /proc), only through files or stdin.
"""
import datetime
import grp
import hashlib
import os
import pwd
import secrets
import subprocess
import tempfile

TOKEN_BYTES = 32


class HelperError(Exception):
    pass


def run(argv, *, input=None, timeout=120, check=True, env=None):
    merged = dict(os.environ, LC_ALL="C")
    if env:
        merged.update(env)
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              env=merged, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise HelperError(f"{argv[0]}: not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise HelperError(f"{argv[0]}: timed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise HelperError(f"{' '.join(argv[:3])} exited {proc.returncode}: {detail}")
    return proc


def sha256_file(path):
    """sha256 of a file, read 1 MiB at a time (release archives and database dumps)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def utc_now():
    """The time of a release's manifest, log line and record (UTC, timezone-aware)."""
    return datetime.datetime.now(datetime.UTC)


def token():
    """URL-safe random text: letters, digits, '-' and '_' only, so it needs no quoting in an
    option file, an ini file or an SQL string."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise HelperError(f"unknown user or group {owner}:{group}") from exc


def stat_problems(path, owner, group, mode):
    """What differs between `path` and the wanted owner, group and mode ([] when right)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return [f"{path} is missing"]
    uid, gid = ids(owner, group)
    out = []
    if (st.st_uid, st.st_gid) != (uid, gid):
        out.append(f"{path} is not owned by {owner}:{group}")
    if st.st_mode & 0o7777 != mode:
        out.append(f"{path} has mode {st.st_mode & 0o7777:04o}, not {mode:04o}")
    return out


def write_new(path, content, owner, group, mode):
    """Create `path` with `content`, atomically, never readable by anyone else in between."""
    uid, gid = ids(owner, group)
    parent = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix="~", dir=parent)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def fix_attrs(path, owner, group, mode):
    uid, gid = ids(owner, group)
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)


def read_option_file(path):
    """The [client] user and password of a MariaDB option file."""
    section, values = None, {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
                continue
            if section == "client" and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    if not values.get("user") or not values.get("password"):
        raise HelperError(f"{path} has no [client] user and password")
    return values
