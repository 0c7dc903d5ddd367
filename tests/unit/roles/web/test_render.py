from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from roles.web import render
from roles.web.site import web_site


@pytest.fixture
def site(prod):
    return web_site(prod, "villeparisis")


def test_nginx_conf_listens_on_private_https_and_loopback_only(site):
    conf = render.nginx_conf(site)
    assert re.findall(r"listen ([^ ;]+)", conf) == ["10.20.0.100:443", "127.0.0.1:80"]


def test_nginx_conf_trusts_forwarded_headers_from_proxy_only(site):
    conf = render.nginx_conf(site)
    assert re.findall(r"set_real_ip_from (\S+);", conf) == ["10.20.0.10"]
    assert '"10.20.0.10|https" on;' in conf


def test_nginx_conf_every_request_logged_none_switched_off(site):
    # lynis HTTP-6712: favicon and robots requests are often a scanner's first ones.
    conf = render.nginx_conf(site)
    assert "access_log off" not in conf
    assert re.findall(r"^\s*access_log (\S+)", conf, re.M) == ["/var/log/nginx/access.log"]


def test_nginx_conf_update_php_admin_networks_only(site):
    conf = render.nginx_conf(site)
    assert "203.0.113.8/29 1;" in conf
    block = conf.split("location ~ ^/update\\.php(/|$) {")[1].split("\n        }")[0]
    assert "if ($hosting_admin = 0)" in block and "fastcgi_pass" in block


@pytest.mark.parametrize("needle", [
    r"location ~ (^|/)\. {",  # dotfiles
    r"location ~* ^/sites/[^/]+/files/.*\.ph(p[0-9s]?|ar|tml)$ {",  # PHP in files
    r"location ~* (^|/)vendor/ {",
    r"location ~* ^/core/(install|rebuild|authorize)\.php {",
    "ya?ml", "composer\\.(json|lock)", ".*sql(\\.gz)?", "bak|orig",
])
def test_nginx_conf_blocks_drupal_sensitive_paths(site, needle):
    assert needle in render.nginx_conf(site)


def test_nginx_conf_blocks_come_before_php_handler(site):
    conf = render.nginx_conf(site)
    assert conf.index("/files/.*\\.ph(p") < conf.index("location ~ ^/[^/]+\\.php(/|$)")


def test_nginx_conf_php_uses_realpath_root_and_own_socket(site):
    conf = render.nginx_conf(site)
    assert "fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;" in conf
    assert "fastcgi_pass unix:/run/php/villeparisis.sock;" in conf
    assert 'fastcgi_param HTTP_PROXY "";' in conf


def test_nginx_conf_no_fastcgi_param_twice(site):
    block = render.nginx_conf(site).split("location ~ ^/[^/]+\\.php(/|$) {")[1].split("}")[0]
    params = re.findall(r"fastcgi_param (\S+)", block)
    assert len(params) == len(set(params))


def test_nginx_conf_body_limit_matches_php(site):
    conf, pool = render.nginx_conf(site), render.php_pool(site)
    assert "client_max_body_size 64m;" in conf
    assert "php_admin_value[post_max_size] = 64M" in pool
    assert "php_admin_value[upload_max_filesize] = 64M" in pool


def test_php_pool_runs_as_site_user_with_own_dirs(site):
    pool = render.php_pool(site)
    assert "[villeparisis]" in pool and "user = villeparisis" in pool
    assert "listen = /run/php/villeparisis.sock" in pool and "listen.mode = 0660" in pool
    assert "php_admin_value[session.save_path] = /srv/villeparisis/sessions" in pool
    assert "php_admin_value[upload_tmp_dir] = /srv/villeparisis/tmp" in pool
    assert ("php_admin_value[open_basedir] = /srv/villeparisis/:/etc/hosting/villeparisis/"
            in pool)
    assert "request_terminate_timeout = 70s" in pool


def test_settings_local_reads_secrets_from_files_not_inline(site):
    php = render.settings_local(site)
    assert "parse_ini_file('/etc/hosting/villeparisis/db.cnf'" in php
    assert "file_get_contents('/etc/hosting/villeparisis/hash_salt')" in php
    assert "password' => $hosting_db" in php


def test_settings_local_trusted_hosts_proxy_and_paths(site):
    php = render.settings_local(site)
    assert "'^villeparisis\\.fr$'," in php and "'^www\\.villeparisis\\.fr$'," in php
    assert "$settings['reverse_proxy_addresses'] = ['10.20.0.10'];" in php
    assert "$settings['file_private_path'] = '/srv/villeparisis/private';" in php
    assert "config_sync_directory'] = '/srv/villeparisis/shared/config/sync';" in php


def test_cron_units_run_drush_cron_as_site_user(site):
    service, timer = render.cron_service(site), render.cron_timer(site)
    assert "User=villeparisis" in service
    assert "vendor/bin/drush --root=/srv/villeparisis/current/web" in service
    assert service.rstrip().endswith("ProtectSystem=full")
    assert "OnCalendar=*-*-* *:00/15:00" in timer


def test_private_service_mounts_gocryptfs_before_php(site):
    unit = render.private_service(site)
    assert "Before=php8.4-fpm.service" in unit
    assert ("-passfile /etc/hosting/villeparisis/private.pass /srv/villeparisis/private.enc "
            "/srv/villeparisis/private") in unit


def test_nginx_conf_passes_nginx_t(site, nginx_test, internal_files, tmp_path):
    conf = render.nginx_conf(site, log_dir=str(tmp_path), pid_file=str(tmp_path / "n.pid"),
                             internal=internal_files[1])
    proc = nginx_test(conf, tmp_path)
    assert proc.returncode == 0, proc.stderr


def _php(*names: str) -> str | None:
    return next((p for n in names if (p := shutil.which(n))), None)


def test_php_pool_passes_php_fpm_t(site, tmp_path):
    fpm = _php("php-fpm8.4", "php-fpm8.3", "php-fpm8.2")
    if fpm is None:
        pytest.skip("php-fpm is not installed here")
    # The site's users exist on its host only; nobody/nogroup stand in for them here.
    pool = render.php_pool(site).replace("user = villeparisis", "user = nobody").replace(
        "group = villeparisis", "group = nogroup")
    path = tmp_path / "pool.conf"
    path.write_text(f"[global]\nerror_log = {tmp_path}/fpm.log\n" + pool)
    proc = subprocess.run([fpm, "-t", "-y", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("which", ["settings_local", "default_settings"])
def test_settings_files_are_valid_php(site, which, tmp_path):
    php = _php("php8.4", "php")
    if php is None:
        pytest.skip("php is not installed here")
    path = tmp_path / "s.php"
    path.write_text(getattr(render, which)(site))
    proc = subprocess.run([php, "-l", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
