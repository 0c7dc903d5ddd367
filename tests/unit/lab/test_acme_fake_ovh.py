"""lab/fake_ovh.py: the fake OVH API checks the request signature like OVH and enforces the
consumer key's access rules (issue 14); certbot's DNS-01 hooks (onhost/acme/ovh_dns.py) work
with the rules `fab acme.credentials` asks for and get 403 with any one of them missing; an
independent client (lexicon's, Debian 12) signs the way the fake checks."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import fake_ovh as f
from onhost.acme import ovh_dns
from roles.acme.config import access_rules

ZONE = "villeparisis.fr"
AK, AS, CK = "appkey1", "appsecret1", "consumerkey1"
BASE = "https://eu.api.ovh.com/1.0"
HERE = Path(__file__).resolve().parent


def make_api(rules=None, published=None, fail_file=None, clock=lambda: 1_700_000_000.0):
    published = published if published is not None else []
    state = {"zones": [ZONE], "applications": {AK: AS},
             "consumers": {CK: {"application": AK,
                                "rules": access_rules(ZONE) if rules is None else rules}}}
    return f.Api(state, lambda name, values: published.append((name, values)), fail_file,
                 clock)


def signed(method: str, url: str, body: str = "", ts: str = "1700000000", secret: str = AS,
           ck: str = CK) -> dict[str, str]:
    return {"X-Ovh-Application": AK, "X-Ovh-Consumer": ck, "X-Ovh-Timestamp": ts,
            "X-Ovh-Signature": f.signature(secret, ck, method, url, body, ts)}


def call(api: f.Api, method: str, path: str, body: str = "", **kw) -> tuple[int, object]:
    url = BASE + path
    return api.handle(method, url, body, signed(method, url, body, **kw))


def test_signature_known_vector_matches_ovh_scheme():
    # "$1$" + sha1("AS+CK+GET+URL++TS"), computed independently with hashlib's sha1 here.
    import hashlib
    raw = "s+c+GET+https://eu.api.ovh.com/1.0/auth/time++42"
    assert f.signature("s", "c", "get", "https://eu.api.ovh.com/1.0/auth/time", "", "42") == \
        "$1$" + hashlib.sha1(raw.encode()).hexdigest()


def test_handle_valid_signature_creates_record():
    api = make_api()
    body = json.dumps({"fieldType": "TXT", "subDomain": "_acme-challenge", "target": "t"})
    status, rec = call(api, "POST", f"/domain/zone/{ZONE}/record", body)
    assert status == 200 and rec["subDomain"] == "_acme-challenge"
    assert list(api.zones.records[ZONE]) == [rec["id"]]


def test_handle_bad_signature_returns_400_and_changes_nothing():
    api = make_api()
    body = json.dumps({"fieldType": "TXT", "subDomain": "x", "target": "t"})
    status, doc = call(api, "POST", f"/domain/zone/{ZONE}/record", body, secret="wrong")
    assert status == 400 and "signature" in doc["message"].lower()
    assert api.zones.records[ZONE] == {}


def test_handle_signature_over_other_url_returns_400():
    api = make_api(rules=[{"method": "GET", "path": "/domain/zone/*"}])
    url = BASE + f"/domain/zone/{ZONE}/record?subDomain=a"
    headers = signed("GET", BASE + f"/domain/zone/{ZONE}/record?subDomain=b")
    assert api.handle("GET", url, "", headers)[0] == 400


def test_handle_unknown_consumer_returns_403():
    assert call(make_api(), "POST", f"/domain/zone/{ZONE}/refresh", ck="other")[0] == 403


def test_handle_stale_timestamp_returns_400():
    api = make_api(clock=lambda: 1_700_000_000.0 + f.MAX_SKEW + 5)
    assert call(api, "POST", f"/domain/zone/{ZONE}/refresh")[0] == 400


def test_handle_call_outside_rules_returns_403():
    api = make_api()
    assert call(api, "GET", "/me")[0] == 403
    assert call(api, "PUT", f"/domain/zone/{ZONE}/record/1", "{}")[0] == 403
    other = "/domain/zone/example.org/record"
    assert call(api, "POST", other, "{}")[1]["message"] == "This call has not been granted"


def test_handle_auth_time_needs_no_signature():
    api = make_api()
    assert api.handle("GET", BASE + "/auth/time", "", {}) == (200, 1_700_000_000)


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/domain/zone/v.fr/record/12", "GET", True),
    ("/domain/zone/v.fr/record/12/x", "GET", True),  # `*` spans slashes, like OVH's
    ("/domain/zone/v.fr/record", "GET", False),
    ("/domain/zone/v.fr/record/12", "DELETE", False),
])
def test_rule_matches_star_suffix_globs_subpaths(path: str, method: str, expected: bool):
    assert f.rule_matches({"method": "GET", "path": "/domain/zone/v.fr/record/*"},
                          method, path) is expected


def test_refresh_publishes_txt_values_only_at_refresh():
    published: list = []
    api = make_api(published=published)
    for token in ("b", "a"):
        body = json.dumps({"fieldType": "TXT", "subDomain": "_acme-challenge", "target": token})
        call(api, "POST", f"/domain/zone/{ZONE}/record", body)
    assert published == []
    call(api, "POST", f"/domain/zone/{ZONE}/refresh")
    assert published == [(f"_acme-challenge.{ZONE}", ["a", "b"])]
    for rid in list(api.zones.records[ZONE]):
        call(api, "DELETE", f"/domain/zone/{ZONE}/record/{rid}")
    call(api, "POST", f"/domain/zone/{ZONE}/refresh")
    assert published[-1] == (f"_acme-challenge.{ZONE}", [])


def test_handle_fail_file_present_record_creation_returns_503(tmp_path: Path):
    flag = tmp_path / "fail"
    flag.touch()
    api = make_api(fail_file=str(flag))
    body = json.dumps({"fieldType": "TXT", "subDomain": "x", "target": "t"})
    assert call(api, "POST", f"/domain/zone/{ZONE}/record", body)[0] == 503


def test_load_state_group_readable_refused(tmp_path: Path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"zones": [ZONE]}))
    state.chmod(0o640)
    with pytest.raises(SystemExit, match="must be 0600"):
        f.load_state(str(state))


# --- real clients against the fake, over HTTP on the loopback ---------------------------------

@pytest.fixture
def serve() -> Iterator:
    servers = []

    def start(api: f.Api) -> str:
        server = f.make_server(api, "127.0.0.1:0")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/1.0"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def hooks_client(base: str) -> ovh_dns.Client:
    return ovh_dns.Client({"dns_ovh_endpoint": "ovh-eu", "dns_ovh_application_key": AK,
                           "dns_ovh_application_secret": AS, "dns_ovh_consumer_key": CK},
                          base=base)


def test_hooks_with_requested_rules_add_publish_and_delete_txt(serve):
    published: list = []
    api = make_api(published=published, clock=time.time)
    client = hooks_client(serve(api))
    ids = [ovh_dns.auth(client, ZONE, ZONE, "token-apex"),
           ovh_dns.auth(client, ZONE, "*.villeparisis.fr", "token-wild")]
    assert published[-1] == (f"_acme-challenge.{ZONE}", ["token-apex", "token-wild"])
    assert ovh_dns.cleanup(client, ZONE, ids) == []
    assert api.zones.records[ZONE] == {} and published[-1][1] == []
    assert [s for _m, _p, s in api.calls if s != 200] == []


@pytest.mark.parametrize("missing", range(len(access_rules(ZONE))),
                         ids=[f"{r['method']} {r['path']}" for r in access_rules(ZONE)])
def test_hooks_without_one_rule_get_403(serve, missing: int):
    rules = [r for i, r in enumerate(access_rules(ZONE)) if i != missing]
    api = make_api(rules=rules, clock=time.time)
    client = hooks_client(serve(api))
    errors: list[str] = []
    try:
        errors += ovh_dns.cleanup(client, ZONE, [ovh_dns.auth(client, ZONE, ZONE, "t")])
    except ovh_dns.OvhError as exc:
        errors.append(str(exc))
    assert any("HTTP 403" in e and "not been granted" in e for e in errors), errors


def test_hooks_wrong_secret_get_400_invalid_signature(serve):
    api = make_api(clock=time.time)
    client = hooks_client(serve(api))
    client.secret = "wrong"
    with pytest.raises(ovh_dns.OvhError, match="HTTP 400: Invalid signature"):
        ovh_dns.auth(client, ZONE, ZONE, "t")


# An independent OVH client (lexicon's, behind Debian 12's certbot-dns-ovh; Debian 13 has
# neither) signs the way the fake checks: the fake's signature rule is OVH's, not ours.
LEXICON_RULES = [{"method": m, "path": p} for m, p in (
    ("GET", "/domain/zone/"), ("GET", f"/domain/zone/{ZONE}/status"),
    ("GET", f"/domain/zone/{ZONE}/record"), ("POST", f"/domain/zone/{ZONE}/record"),
    ("GET", f"/domain/zone/{ZONE}/record/*"), ("DELETE", f"/domain/zone/{ZONE}/record/*"),
    ("POST", f"/domain/zone/{ZONE}/refresh"))]


def plugin_available() -> bool:
    probe = subprocess.run(["/usr/bin/python3", "-c", "import certbot_dns_ovh, lexicon"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3") or not plugin_available(),
                    reason="Debian 12's python3-certbot-dns-ovh is not installed here")
def test_lexicon_client_signs_as_fake_checks_add_and_delete_txt(serve):
    published: list = []
    api = make_api(rules=LEXICON_RULES, published=published, clock=time.time)
    proc = subprocess.run(["/usr/bin/python3", str(HERE / "acme_plugin_driver.py"),
                           serve(api)], input=json.dumps({"ak": AK, "as": AS, "ck": CK}),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip() == "OK", proc.stdout + proc.stderr
    assert [s for _m, _p, s in api.calls if s != 200] == []
    assert (f"_acme-challenge.{ZONE}", ["token-1"]) in published
