"""A site's private files on gocryptfs (R-GDPR-1).

  <site root>/private.enc   the encrypted directory (what is on disk), site user, 0700
  <site root>/private       the plaintext view, mounted at boot by hosting-private-<site>
                            (root mounts with allow_other: the kernel checks permissions)
  /etc/hosting/<site>/private.pass   the password (root only): see docs/web-tier.md for where
                            its copy is kept and how to restore without it

While unmounted the mount point is an empty root-only directory, so PHP fails to write
private files instead of silently writing them unencrypted.
"""
import os

from hw_util import HelperError, fix_attrs, ids, run, stat_problems


def check(site, cipher, plain, passfile, unit):
    problems = []
    if not os.path.exists(os.path.join(cipher, "gocryptfs.conf")):
        problems.append(f"{cipher} is not a gocryptfs directory")
    else:
        problems += stat_problems(cipher, site, site, 0o700)
    if not os.path.exists(passfile):
        problems.append(f"{passfile} is missing")
    if not os.path.ismount(plain):
        problems.append(f"{plain} is not mounted ({unit})")
    elif stat_problems(plain, site, site, 0o700):
        problems.append(f"{plain} is mounted but not {site}-only")
    return problems


def ensure(site, cipher, plain, passfile, unit):
    done = []
    if not os.path.exists(passfile):
        raise HelperError(f"{passfile} is missing (run the secrets step first)")
    if not os.path.exists(os.path.join(cipher, "gocryptfs.conf")):
        if os.path.isdir(cipher) and os.listdir(cipher):
            raise HelperError(f"{cipher} is not empty but has no gocryptfs.conf: refusing to "
                              "initialise over it")
        os.makedirs(cipher, mode=0o700, exist_ok=True)
        run(["gocryptfs", "-init", "-quiet", "-passfile", passfile, cipher])
        done.append(f"initialised the encrypted directory {cipher}")
    fix_attrs(cipher, site, site, 0o700)
    if not os.path.ismount(plain):
        os.makedirs(plain, mode=0o700, exist_ok=True)
        fix_attrs(plain, "root", "root", 0o700)
        run(["systemctl", "restart", unit + ".service"], timeout=60)
        if not os.path.ismount(plain):
            raise HelperError(f"{unit} did not mount {plain}")
        done.append(f"mounted {plain}")
    uid, gid = ids(site, site)
    st = os.stat(plain)
    if (st.st_uid, st.st_gid, st.st_mode & 0o7777) != (uid, gid, 0o700):
        fix_attrs(plain, site, site, 0o700)  # the root of the plaintext view
        done.append(f"made {plain} {site}-only")
    return done
