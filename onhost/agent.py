"""The remote half of the engine, run ON THE HOST by Debian's python3 as root: standard library
only, python3 >= 3.10, no import from the rest of the repository; shipped over SSH on every run.

One session per host and run (engine/remote.py): one JSON request per stdin line, one JSON
answer per stdout line, until stdin closes. `system`: the facts roles branch on. `facts`: what
the decisions need; a file as its attributes and its sha256 computed here, its content only when
listed in "contents" (--check diffs and probe records; never a sensitive file). `apply`: run the
operations in order, stop at the first failure, then each handler one of whose notifying
operations succeeded AND changed something; each result is {"ok", "changed", "skipped", "error",
"output"}. It decides nothing: the decisions are made on the admin's machine, one module per
primitive in engine/primitives/, each naming its ops in the OPS table at the end
(tests/unit/engine/primitives/test_registry.py checks that they pair).
"""
import base64
import grp
import hashlib
import json
import os
import pwd
import shlex
import stat as st_mod
import subprocess
import sys
import tempfile

MAX_CONTENT = 1 << 20  # content never comes back for files larger than this (diff by digest)
OUTPUT_TAIL = 2000
# A check command's exit status for "not in state, apply must run" (engine/primitives/check.py);
# 0 is "in state", anything else an error. The on-host helpers' --check modes use the same.
WOULD_CHANGE = 3


class OpFailed(Exception):
    pass


# --- facts ---


def _run(argv, timeout=60, env=None, stdin=None):
    merged = dict(os.environ, LC_ALL="C")
    if env:
        merged.update(env)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=merged,
                              stdin=subprocess.DEVNULL if stdin is None else None, input=stdin)
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not found"
    except subprocess.TimeoutExpired as exc:
        return 124, "", f"{argv[0]}: timed out after {timeout}s ({exc})"
    return proc.returncode, proc.stdout, proc.stderr


def path_fact(path, with_content=False):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    if st_mod.S_ISREG(st.st_mode):
        kind = "file"
    elif st_mod.S_ISDIR(st.st_mode):
        kind = "dir"
    elif st_mod.S_ISLNK(st.st_mode):
        kind = "link"
    else:
        kind = "other"
    fact = {"exists": True, "kind": kind, "mode": st_mod.S_IMODE(st.st_mode),
            "owner": _user_name(st.st_uid), "group": _group_name(st.st_gid), "size": st.st_size}
    if kind == "file":
        with open(path, "rb") as f:
            data = f.read()
        fact["sha256"] = hashlib.sha256(data).hexdigest()
        if with_content and len(data) <= MAX_CONTENT:
            fact["content_b64"] = base64.b64encode(data).decode("ascii")
    return fact


def _user_name(uid):
    return _name(pwd.getpwuid, uid)


def _group_name(gid):
    return _name(grp.getgrgid, gid)


def _name(lookup, num):
    try:
        return lookup(num)[0]
    except KeyError:
        return str(num)


def packages_fact(names):
    if not names:
        return {}
    fmt = "${Package}\t${db:Status-Abbrev}\t${Version}\n"
    _rc, out, _err = _run(["dpkg-query", "-W", "-f", fmt, "--"] + list(names))
    found = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("ii"):
            found[parts[0]] = parts[2]
    # dpkg-query names arch-qualified packages "name:arch"; requests use plain names
    return {n: found.get(n) or found.get(n.split(":")[0]) for n in names}


UNIT_PROPS = ("LoadState", "UnitFileState", "ActiveState")


def units_fact(units):
    if not units:
        return {}
    _rc, out, _err = _run(["systemctl", "show", "--property=" + ",".join(UNIT_PROPS), "--"]
                          + list(units))
    blocks = [b for b in out.strip("\n").split("\n\n")]
    facts = {}
    for unit, block in zip(units, blocks + [""] * (len(units) - len(blocks)), strict=False):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        facts[unit] = {p: props.get(p, "") for p in UNIT_PROPS}
    return facts


def sysctl_fact(keys):
    out = {}
    for key in keys:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                out[key] = " ".join(f.read().split())
        except OSError:
            out[key] = None
    return out


def users_fact(names):
    out = {}
    for name in names:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            out[name] = {"exists": False}
            continue
        groups = sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
        out[name] = {"exists": True, "uid": pw.pw_uid, "home": pw.pw_dir, "shell": pw.pw_shell,
                     "groups": groups}
    return out


def system_fact():
    rc, out, _err = _run(["systemd-detect-virt", "--container"])
    container = out.strip() if rc == 0 and out.strip() != "none" else ""
    os_release = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    os_release[k] = v.strip('"')
    except OSError:
        pass
    algorithms = {}
    for query in ("kex", "cipher", "mac", "key"):
        rc, out, _err = _run(["ssh", "-Q", query])
        algorithms[query] = out.split() if rc == 0 else []
    return {"container": container, "os_id": os_release.get("ID", ""),
            "os_version_id": os_release.get("VERSION_ID", ""),
            "python": "{}.{}".format(*sys.version_info[:2]), "ssh_algorithms": algorithms,
            "mem_total_kb": mem_total_kb()}


def mem_total_kb(path="/proc/meminfo"):
    """MemTotal in kB (the web role sizes PHP-FPM from it), 0 when it cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def gather(request):
    """The `facts` request (the system facts are their own request: roles need them first)."""
    commands = {}
    for name, argv in sorted(request.get("commands", {}).items()):
        rc, out, err = _run(argv)
        commands[name] = {"rc": rc, "out": out, "err": err[-OUTPUT_TAIL:]}
    contents = set(request.get("contents", ()))
    return {
        "paths": {p: path_fact(p, p in contents) for p in request.get("paths", [])},
        "packages": packages_fact(request.get("packages", [])),
        "units": units_fact(request.get("units", [])),
        "sysctls": sysctl_fact(request.get("sysctls", [])),
        "users": users_fact(request.get("users", [])),
        "commands": commands,
    }


# --- operations: each returns (changed, output) or raises OpFailed ---


def _ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise OpFailed(f"unknown owner/group {owner}:{group} ({exc})") from exc


def _tail(argv, rc, out, err):
    cmd = " ".join(argv)
    cmd = cmd if len(cmd) <= 120 else cmd[:117] + "..."
    return f"{cmd} exited {rc}: {(out + err).strip()[-OUTPUT_TAIL:]}"


# --- primitive file (engine/primitives/file.py), and directory for attrs ---

def op_write(op):
    path = op["path"]
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    uid, gid = _ids(op["owner"], op["group"])
    # The temporary name ends in "~": apt.conf.d, sudoers.d and every *.conf glob ignore it,
    # so even a crash between write and rename cannot activate half a configuration.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix="~", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(op["content_b64"]))
            f.flush()
            os.fsync(f.fileno())
            os.fchown(f.fileno(), uid, gid)
            os.fchmod(f.fileno(), op["mode"])
        if op.get("validate"):
            cmd = op["validate"].replace("{}", shlex.quote(tmp))
            rc, out, err = _run(["sh", "-c", cmd], timeout=120)
            if rc != 0:
                detail = (out + err).strip()[-OUTPUT_TAIL:]
                raise OpFailed(f"validation failed ({op['validate']}, exit {rc}), {path} left "
                               f"unchanged: {detail}")
        os.replace(tmp, path)
        tmp = None
        dfd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return True, ""


def op_attrs(op):
    uid, gid = _ids(op["owner"], op["group"])
    os.chown(op["path"], uid, gid, follow_symlinks=False)
    os.chmod(op["path"], op["mode"])
    return True, ""


# --- primitive directory (engine/primitives/directory.py) ---

def op_mkdir(op):
    os.makedirs(op["path"], mode=op["mode"], exist_ok=True)
    return op_attrs(op)


# --- primitive absent (engine/primitives/absent.py) ---

def _remove(path):
    """Remove a file or link; False when it was not there. A directory is refused."""
    if os.path.isdir(path) and not os.path.islink(path):
        raise OpFailed(f"{path} is a directory; refusing to remove it")
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def op_remove(op):
    return _remove(op["path"]), ""


# --- primitive packages (engine/primitives/packages.py) ---

def op_apt(op):
    """Install (or purge) with the admin side's apt-get script; `changed` from dpkg itself,
    before and after. Right after a run that really installed something, remove the
    `leftovers` (files a package ships that must never be live, e.g. Debian's default site)."""
    names, install = op["names"], op["install"]
    before = packages_fact(names)
    rc, out, err = _run(["sh", "-c", op["script"]], timeout=op.get("timeout", 1260),
                        env=op.get("env"))
    if rc != 0:
        raise OpFailed(_tail(["apt-get"] + list(names), rc, out, err))
    after = packages_fact(names)
    changed = any(bool(after.get(n)) != bool(before.get(n)) for n in names)
    if not install:
        return changed, ""
    removed = [p for p in op.get("leftovers", ()) if changed and _remove(p)]
    return changed, "removed " + " ".join(removed) if removed else ""


# --- primitives service and user (their commands), and every handler ---

def op_command(op):
    rc, out, err = _run(op["argv"], timeout=op.get("timeout", 300), env=op.get("env"))
    if rc != 0:
        raise OpFailed(_tail(op["argv"], rc, out, err))
    return True, (out + err).strip()[-400:]


# --- primitive sysctl (engine/primitives/sysctl.py) ---

def op_sysctl(op):
    proc = "/proc/sys/" + op["key"].replace(".", "/")
    try:
        with open(proc, "w") as f:
            f.write(op["value"])
    except OSError as exc:
        raise OpFailed(f"cannot set {op['key']}={op['value']}: {exc}") from exc
    return True, ""


# --- primitive probe (engine/primitives/probe.py) ---

def op_notify(_op):
    """A probe saw a drift: nothing to do here, but `changed`, so its handlers (the repair) run."""
    return True, ""


# --- primitive check (engine/primitives/check.py) ---

def op_check(op):
    """Check; apply only when the check says WOULD_CHANGE; check again after apply. Any other
    exit status of the check fails the op with the check's stderr."""
    timeout = op.get("timeout", 300)

    def check(when):
        rc, out, err = _run(op["check"], timeout=timeout)
        if rc not in (0, WOULD_CHANGE):
            raise OpFailed(f"check {when} failed: " + _tail(op["check"], rc, "", err or out))
        return rc, out.strip()

    rc, _said = check("before apply")
    if rc == 0:
        return False, "in state"
    rc, out, err = _run(op["apply"], timeout=timeout)
    if rc != 0:
        raise OpFailed(_tail(op["apply"], rc, out, err))
    rc, said = check("after apply")
    if rc != 0:
        raise OpFailed(f"{' '.join(op['apply'])} ran but its check still says: {said[-400:]}")
    return True, (out + err).strip()[-400:]


OPS = {"write": op_write, "attrs": op_attrs, "mkdir": op_mkdir, "remove": op_remove,
       "apt": op_apt, "command": op_command, "sysctl": op_sysctl, "notify": op_notify,
       "check": op_check}


def run_op(op):
    """-> (ok, changed, output, error)"""
    try:
        changed, output = OPS[op["kind"]](op)
        return True, changed, output, ""
    except OpFailed as exc:
        return False, False, "", str(exc)
    except (OSError, KeyError, ValueError) as exc:
        return False, False, "", f"{type(exc).__name__}: {exc}"


def apply(actions, handlers):
    """Run `actions` in order until one fails; then each handler whose `after` list holds an
    action that succeeded and changed something: the running service must match what is on
    disk, even when a later action failed."""
    results = []
    failed = False
    for action in actions:
        if failed:
            results.append({"ok": False, "changed": False, "skipped": True,
                            "error": "not run: an earlier action failed", "output": ""})
            continue
        ok, changed, output, error = run_op(action)
        results.append({"ok": ok, "changed": changed, "skipped": False, "error": error,
                        "output": output})
        failed = not ok
    handler_results = []
    for h in handlers:
        if any(results[i]["ok"] and results[i]["changed"] for i in h["after"]):
            ok, changed, output, error = run_op(h["op"])
            handler_results.append({"name": h["name"], "ran": True, "ok": ok,
                                    "changed": changed, "error": error, "output": output})
        else:
            handler_results.append({"name": h["name"], "ran": False, "ok": True,
                                    "changed": False, "error": "", "output": ""})
    return {"results": results, "handlers": handler_results}


def answer(request):
    mode = request.get("mode")
    if mode == "system":
        return system_fact()
    if mode == "facts":
        return gather(request["request"])
    if mode == "apply":
        return apply(request["actions"], request["handlers"])
    return {"agent_error": f"unknown mode {mode!r}"}


def main():
    """One JSON request per line, one JSON answer per line, until stdin closes."""
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        if not line.strip():
            continue
        try:
            reply = answer(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - said to the admin side, the session goes on
            reply = {"agent_error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
