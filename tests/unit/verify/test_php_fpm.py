"""The verification suite's reader of `php-fpm -tt` (tests/verify/test_php_fpm.py), on the
layout PHP 8.4's FPM prints (one NOTICE line per setting, flags printed as values)."""
from __future__ import annotations

from tests.verify.test_php_fpm import admin_setting, parse_fpm_dump

DUMP = """\
[26-Nov-2026 10:56:53] NOTICE: [global]
[26-Nov-2026 10:56:53] NOTICE: \tpid = /run/php/php8.4-fpm.pid
[26-Nov-2026 10:56:53] NOTICE: \tdaemonize = yes
[26-Nov-2026 10:56:53] NOTICE:
[26-Nov-2026 10:56:53] NOTICE: [villeparisis]
[26-Nov-2026 10:56:53] NOTICE: \tuser = villeparisis
[26-Nov-2026 10:56:53] NOTICE: \tlisten = /run/php/villeparisis.sock
[26-Nov-2026 10:56:53] NOTICE: \tlisten.acl_users = undefined
[26-Nov-2026 10:56:53] NOTICE: \tphp_admin_value[display_errors] = 0
[26-Nov-2026 10:56:53] NOTICE: \tphp_admin_value[open_basedir] = /srv/villeparisis/:/etc/x/
[26-Nov-2026 10:56:53] NOTICE: configuration file /etc/php/8.4/fpm/php-fpm.conf test is successful
"""


def test_parse_fpm_dump_sections_and_settings():
    pools = parse_fpm_dump(DUMP)
    assert set(pools) == {"global", "villeparisis"}
    pool = pools["villeparisis"]
    assert pool["user"] == "villeparisis" and pool["listen"] == "/run/php/villeparisis.sock"
    assert pool["php_admin_value[open_basedir]"] == "/srv/villeparisis/:/etc/x/"
    assert pool["listen.acl_users"] == "undefined"
    assert "configuration file /etc/php/8.4/fpm/php-fpm.conf test is successful" not in pool


def test_admin_setting_reads_flags_printed_as_values():
    pool = parse_fpm_dump(DUMP)["villeparisis"]
    assert admin_setting(pool, "display_errors") == "0"
    assert admin_setting(pool, "allow_url_include") == ""
