"""dev-sec nginx-baseline's controls that tests/verify/test_nginx.py had left out (issue 17):
nginx-06, 07, 09, 14, 15, 16, as pure functions over the parsed effective configuration
(tests/verify/nginx_config.py) or over what curl got from the real nginx; unit-tested with
healthy and broken inputs (tests/unit/verify/test_nginx_baseline.py).

Control texts: dev-sec/nginx-baseline controls/nginx_spec.rb. Where a control as written does
not fit a Drupal host, the adaptation and its reason are said at the function; the intent
(bounded buffers, per-client limits, no unsafe methods, a restrictive CSP, safe cookies) is
what is checked.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from . import nginx_config as nc

# nginx's own defaults on 64-bit Linux (ngx_http_core_module): what is in force when a
# directive is absent.
DEFAULTS = {"client_body_buffer_size": "16k", "client_header_buffer_size": "1k",
            "large_client_header_buffers": "4 8k"}
# nginx-06 adapted: dev-sec wants 1k buffers and 1k bodies. A Drupal site takes uploads and its
# pages carry session cookies and long query strings, so bodies are bounded by the site's
# upload limit (checked apart) and the buffers by nginx's defaults, never above.
MAX_BODY_BUFFER = 16 * 1024
MAX_HEADER_BUFFER = 1024
MAX_LARGE_HEADER_BUFFERS = (4, 8 * 1024)
# nginx-14 "Disable insecure HTTP-methods" (dev-sec: only GET|HEAD|POST): Drupal needs GET,
# HEAD, POST, and its REST and JSON:API modules PUT/PATCH/DELETE/OPTIONS, so those stay; any
# other method must be refused by nginx before PHP: probed with TRACE (echoes the request,
# cookies included: cross-site tracing) and TRACK (IIS's twin, which nginx does not know: it
# reached Drupal and got the front page, 200, until the web role refused unknown methods).
REFUSED_METHODS = ("TRACE", "TRACK")
NGINX_ERROR_PAGE = "<center>nginx</center>"


def _size(levels: Sequence[nc.Directive], name: str) -> str:
    return nc.value(levels, name) or DEFAULTS[name]


def buffer_problems(levels: Sequence[nc.Directive]) -> list[str]:
    """nginx-06 "Prevent buffer overflow attacks": the buffers in force at `levels` (http,
    server, location) no larger than nginx's defaults, client_max_body_size never unlimited."""
    problems = []
    body = _size(levels, "client_body_buffer_size")
    if nc.size_bytes(body) > MAX_BODY_BUFFER:
        problems.append(f"nginx-06: client_body_buffer_size {body} > 16k")
    header = _size(levels, "client_header_buffer_size")
    if nc.size_bytes(header) > MAX_HEADER_BUFFER:
        problems.append(f"nginx-06: client_header_buffer_size {header} > 1k")
    large = _size(levels, "large_client_header_buffers").split()
    if len(large) != 2 or int(large[0]) > MAX_LARGE_HEADER_BUFFERS[0] or \
            nc.size_bytes(large[1]) > MAX_LARGE_HEADER_BUFFERS[1]:
        problems.append(f"nginx-06: large_client_header_buffers {' '.join(large)} > 4 8k")
    if (nc.value(levels, "client_max_body_size") or "1m") == "0":
        problems.append("nginx-06: client_max_body_size 0 (unlimited)")
    return problems


def rate_limit_problems(http: nc.Directive, levels: Sequence[nc.Directive]) -> list[str]:
    """nginx-07 "Control simultaneous connections" adapted: not `limit_conn 5` per address (an
    office or a mobile carrier's NAT puts many visitors behind one address, and HTTP/2 carries
    a browser's requests over one connection anyway) but a `limit_req` per client address on
    the dynamic pages: in force at `levels`, on a zone keyed by the client's address."""
    zones = {}
    for d in http.all("limit_req_zone"):
        m = next((re.match(r"zone=([^:]+):", a) for a in d.args if a.startswith("zone=")), None)
        if m:
            zones[m.group(1)] = d.args[0]
    per_client = {"$binary_remote_addr", "$remote_addr"}
    maps = {d.args[1]: {c.args[0] for c in d.block or () if c.args}
            for d in http.all("map") if len(d.args) == 2}
    used = [a.split("=", 1)[1] for d in nc.inherited(levels, "limit_req") for a in d.args
            if a.startswith("zone=")]
    if not used:
        return ["nginx-07: no limit_req where pages are served"]
    problems = []
    for zone in used:
        key = zones.get(zone)
        if key is None:
            problems.append(f"nginx-07: limit_req zone {zone} is not defined")
        elif key not in per_client and not (maps.get(key, set()) & per_client):
            problems.append(f"nginx-07: zone {zone} is keyed by {key}, not the client address")
    return problems


def xss_header_problems(headers: dict[str, str]) -> list[str]:
    """nginx-09 "Enable Cross-site scripting filter" adapted: dev-sec wants
    `X-XSS-Protection: 1; mode=block`. Browsers have removed that filter (Chrome 78, Edge;
    Firefox never had it) and the filter itself leaked data across sites, so OWASP's Secure
    Headers project now says: send no such header, or `0`. The protection it aimed at is the
    Content-Security-Policy (nginx-15)."""
    value = headers.get("x-xss-protection")
    if value is not None and value.strip() != "0":
        return [f"nginx-09: X-XSS-Protection {value!r} (absent or 0, never the old filter)"]
    return []


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out.setdefault(words[0].lower(), [w.lower() for w in words[1:]])
    return out


def csp_problems(csp: str) -> list[str]:
    """nginx-15 "Content-Security-Policy": dev-sec wants `script-src 'self'; object-src
    'self'`. Checked as its meaning: scripts (script-src, else default-src) only from listed
    origins, never any host, a bare scheme, inline or eval; plugins (object-src, else
    default-src) 'none' or 'self'. Other directives are the site's own (sites[].headers)."""
    if not csp:
        return ["nginx-15: no Content-Security-Policy"]
    d = _directives(csp.strip('"'))
    problems = []
    scripts = d.get("script-src", d.get("default-src"))
    if scripts is None:
        problems.append("nginx-15: neither script-src nor default-src")
    else:
        loose = [s for s in scripts if s in ("*", "'unsafe-inline'", "'unsafe-eval'", "http:",
                                             "https:", "data:", "blob:")]
        if loose:
            problems.append(f"nginx-15: scripts allowed from {', '.join(loose)}")
    objects = d.get("object-src", d.get("default-src"))
    if objects is None or not set(objects) <= {"'none'", "'self'"}:
        problems.append(f"nginx-15: object-src {' '.join(objects or ['(none set)'])}")
    return problems


def https_to_php_problems(conf: nc.Directive, proxy_ip: str) -> list[str]:
    """nginx-16 "Set cookie with HttpOnly and Secure flag" adapted: dev-sec's check needs a
    third-party module (nginx_cookie_flag_module, which Debian does not ship; dev-sec itself
    skips the control unless told it is there). Drupal sets HttpOnly on its session cookie
    itself and Secure when PHP sees HTTPS: what nginx owes is to tell PHP, on every request the
    proxy forwarded over HTTPS, `HTTPS=on`: every fastcgi_pass has `fastcgi_param HTTPS`, from
    a map that says "on" for the proxy's address with X-Forwarded-Proto https."""
    maps = {d.args[1]: d for d in nc.http(conf).all("map") if len(d.args) == 2}
    problems = []
    for chain, d in nc.walk(conf):
        if d.name != "fastcgi_pass":
            continue
        params = {p.args[0]: p.args[1:] for p in nc.inherited(chain, "fastcgi_param")}
        value = (params.get("HTTPS") or [""])[0]
        where = " ".join(chain[-1].args) or chain[-1].name
        if not value:
            problems.append(f"nginx-16: no fastcgi_param HTTPS at {where}")
            continue
        if value == "on":
            continue
        m = maps.get(value)
        entries = {c.name: c.args for c in (m.block or ()) if m} if m else {}
        if entries.get(f"{proxy_ip}|https") != ["on"]:
            problems.append(f"nginx-16: HTTPS {value} is not 'on' for the proxy's "
                            f"HTTPS requests at {where}")
    return problems


def refused_by_nginx(status: str, body_origin: str) -> bool:
    """A blocked path's answer: 403 or 404 written by nginx itself (its error page), not a
    Drupal 404 after PHP ran."""
    return status in ("403", "404") and body_origin == "nginx"
