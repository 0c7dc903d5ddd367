"""`python3 /usr/local/lib/hosting/web COMMAND ...`: the web host's helper, run as root by the
web role's checks (`--check`: change nothing; exit 0 when in state, WOULD_CHANGE (3) and say
what is wrong when the same command without --check must run, anything else on error: the
deploy engine's Check primitive, engine/primitives/check.py) and by `fab web.release` /
`fab web.rollback` and `fab update` (JSON report on stdout; hw_update).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hw_copy  # noqa: E402
import hw_db  # noqa: E402
import hw_metrics  # noqa: E402
import hw_private  # noqa: E402
import hw_release  # noqa: E402
import hw_secrets  # noqa: E402
import hw_site  # noqa: E402
import hw_update  # noqa: E402
from hw_util import HelperError  # noqa: E402

WOULD_CHANGE = 3  # the deploy agent's (onhost/agent.py): "not in state, run the fix"


def _site_args(p):
    p.add_argument("--site", required=True)
    p.add_argument("--check", action="store_true")


def parser():
    ap = argparse.ArgumentParser(prog="hosting-web")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("secrets")
    _site_args(p)
    p.add_argument("--etc", required=True)
    p.add_argument("--database", required=True)
    p = sub.add_parser("database")
    _site_args(p)
    p.add_argument("--database", required=True)
    p.add_argument("--creds", required=True)
    p = sub.add_parser("db-baseline")
    p.add_argument("--check", action="store_true")
    p = sub.add_parser("private")
    _site_args(p)
    for opt in ("--cipher", "--plain", "--passfile", "--unit"):
        p.add_argument(opt, required=True)
    p = sub.add_parser("sanitize", help="issue 15: sanitize a preprod copy, then check it")
    p.add_argument("--database", required=True)
    p.add_argument("--sql-file", required=True)
    p.add_argument("--allowed-domain", required=True)
    p = sub.add_parser("logmark", help="issue 15: the error logs' sizes now")
    p = sub.add_parser("fatals", help="issue 15: PHP fatal errors since a logmark")
    p.add_argument("--mark", required=True, help="logmark's JSON answer")
    for name in ("release", "rollback", "status", "revert", "copy-in"):
        p = sub.add_parser(name)
        p.add_argument("--site", required=True)
        p.add_argument("--root", required=True)
        p.add_argument("--owner", required=True)
        p.add_argument("--group", required=True)
        p.add_argument("--settings-local", required=True)
        p.add_argument("--default-settings", required=True)
        p.add_argument("--health-url", default="")
        p.add_argument("--health-host", default="")
        p.add_argument("--php", default="php")
        p.add_argument("--database", default="", help="the site's database (release snapshots)")
        p.add_argument("--snapshot-dir", default="", help="default: "
                       "/var/lib/hosting/release-db/<site>")
        if name == "copy-in":
            p.add_argument("--archive", required=True, help="the export, uploaded by the admin")
            p.add_argument("--sha256", required=True)
            p.add_argument("--public", required=True, help="the site's public files directory")
            p.add_argument("--private", required=True, help="its private files (plaintext view)")
        if name == "revert":
            p.add_argument("--release", required=True, help="the live release to revert")
        if name == "release":
            p.add_argument("--upload", default="", help="archive uploaded by the admin")
            p.add_argument("--sha256", required=True)
            p.add_argument("--source", default="")
    return ap


def _state(problems):
    """A --check's answer: 0 when there is nothing to do, else WOULD_CHANGE and the problems."""
    if problems:
        print("\n".join(problems))
        return WOULD_CHANGE
    return 0


def _did(changes):
    print("\n".join(changes) if changes else "nothing to do")
    return 0


def main(argv=None):
    a = parser().parse_args(argv)
    try:
        if a.command == "secrets":
            f = hw_secrets.check if a.check else hw_secrets.ensure
            out = f(a.site, a.etc, a.database)
            return _state(out) if a.check else _did(out)
        if a.command == "database":
            if a.check:
                return _state(hw_db.check_site(a.site, a.database, a.creds))
            return _did(hw_db.ensure_site(a.site, a.database, a.creds))
        if a.command == "db-baseline":
            return _state(hw_db.check_baseline()) if a.check else _did(hw_db.ensure_baseline())
        if a.command == "private":
            args = (a.site, a.cipher, a.plain, a.passfile, a.unit)
            return _state(hw_private.check(*args)) if a.check else _did(hw_private.ensure(*args))
        if a.command in ("sanitize", "logmark", "fatals"):
            print(json.dumps(_update_step(a), sort_keys=True))
            return 0
        site = hw_site.Site(a.root, a.owner, a.group, a.site, a.settings_local,
                            a.default_settings, a.health_url, a.health_host, a.php,
                            a.database, a.snapshot_dir)
        if a.command == "status":
            report = site.status()
        elif a.command == "release":
            report = hw_release.deploy(site, a.upload, a.sha256, a.source)
        elif a.command == "copy-in":
            report = hw_copy.copy_in(site, a.archive, a.sha256, a.public, a.private)
        elif a.command == "revert":
            report = hw_update.revert(site, a.release)
        else:
            report = hw_release.rollback(site)
        _release_metrics(a, True)
        print(json.dumps(report, sort_keys=True))
        return 0
    except hw_release.ReleaseFailed as exc:
        _release_metrics(a, False)
        # The record on stdout (the admin side reads what happened), the error on stderr.
        print(json.dumps(exc.record, sort_keys=True))
        print(f"hosting-web {a.command}: {exc}", file=sys.stderr)
        return 1
    except HelperError as exc:
        _release_metrics(a, False)
        print(f"hosting-web {a.command}: {exc}", file=sys.stderr)
        return 1


def _update_step(a):
    if a.command == "sanitize":
        return hw_update.sanitize(a.database, a.sql_file, a.allowed_domain)
    if a.command == "logmark":
        return hw_update.logmark()
    try:
        mark = json.loads(a.mark)
    except ValueError as exc:
        raise HelperError(f"--mark: not JSON ({exc})") from exc
    return hw_update.fatals(mark)


def _release_metrics(a, ok):
    """The live release and this release's or rollback's result, for node exporter
    (hw_metrics, issue 13); never changes the command's own result."""
    if a.command in ("release", "rollback", "revert"):
        warning = hw_metrics.write_release(a.site, a.root, ok)
        if warning:
            print(f"hosting-web {a.command}: {warning}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
