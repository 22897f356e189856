#!/usr/bin/env python3
"""Prove azure_standin.py faithful by driving it with the official Azure SDKs.

    tests/vaults/.venv/bin/python tests/vaults/azure_sdk_check.py

Exit 0 only if every check passes.
"""

import base64
import datetime
import hashlib
import http.client
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

logging.getLogger("azure").setLevel(logging.ERROR)  # expected auth failures would log warnings
HERE = os.path.dirname(os.path.abspath(__file__))
API = "7.5"
ORDER = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-256K": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}
T0 = time.time()
FAILS = []


def check(name):
    def deco(fn):
        t = time.time()
        try:
            msg = fn()
            print("PASS %-28s %5.2fs %s" % (name, time.time() - t, msg or ""), flush=True)
        except Exception as e:  # noqa: BLE001
            FAILS.append(name)
            print("FAIL %-28s %5.2fs %s: %s" % (name, time.time() - t, type(e).__name__, str(e)[:300]),
                  flush=True)
        return fn
    return deco


def main():
    tmp = tempfile.mkdtemp(prefix="azstandin-")
    secret_file = os.path.join(tmp, "client-secret")
    with open(secret_file, "w") as f:
        f.write("s3cr3t-for-tests\n")
    tenant, client_id = "11111111-2222-3333-4444-555555555555", "palisade-test-app"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "azure_standin.py"), "--dir", tmp, "--port", "0",
         "--tenant", tenant, "--client-id", client_id, "--client-secret-file", secret_file,
         "--identity-header", "idh-123"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        ready = json.loads(line)
        assert ready["ready"] is True, ready
        print("stand-in ready: %s" % line.strip())
        return run_checks(ready, tmp, tenant, client_id)
    finally:
        proc.terminate()
        try:
            rc = proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed"
        err = proc.stderr.read()
        if err.strip():
            print("stand-in stderr:\n" + err[-2000:])
        print("stand-in exit: %s" % rc)
        shutil.rmtree(tmp, ignore_errors=True)


def run_checks(ready, tmp, tenant, client_id):
    url, ca, authority = ready["vault_url"], ready["ca"], ready["authority"]
    sslctx = ssl.create_default_context(cafile=ca)

    def hook(path, body=None):
        req = urllib.request.Request(url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=sslctx) as r:
            return json.loads(r.read())

    def cred(secret="s3cr3t-for-tests", **kw):
        return ClientSecretCredential(tenant, client_id, secret, authority=authority,
                                      disable_instance_discovery=True, connection_verify=ca, **kw)

    common = dict(api_version=API, verify_challenge_resource=False, connection_verify=ca)
    credential = cred()
    kc = KeyClient(url, credential, **common)
    sc = SecretClient(url, credential, **common)
    keys = {}

    @check("raw 401 challenge")
    def _():
        req = urllib.request.Request(url + "/secrets/x?api-version=7.5")
        try:
            urllib.request.urlopen(req, context=sslctx)
            raise AssertionError("expected 401")
        except urllib.error.HTTPError as e:
            hdr = e.headers["WWW-Authenticate"]
            want = 'Bearer authorization="%s/%s", resource="https://vault.azure.net"' % (authority, tenant)
            assert e.code == 401 and hdr == want, (e.code, hdr)
            body = json.loads(e.read())
            assert body["error"]["code"] == "Unauthorized"
        return hdr

    @check("create+get EC keys")
    def _():
        for crv in ("P-256", "P-256K"):
            name = "k-" + crv.lower().replace("-", "")
            k1 = kc.create_ec_key(name, curve=crv)
            k = kc.create_ec_key(name, curve=crv)  # second version
            assert k.properties.version != k1.properties.version and len(k.properties.version) == 32
            g = kc.get_key(name)
            assert g.id == k.id == "%s/keys/%s/%s" % (url, name, k.properties.version), (g.id, k.id)
            assert g.key.crv == crv and g.key.kty == "EC" and len(g.key.x) == 32 and len(g.key.y) == 32
            g1 = kc.get_key(name, k1.properties.version)
            assert g1.key.x == k1.key.x
            keys[crv] = g
        hsm = kc.create_ec_key("k-hsm", curve="P-256", hardware_protected=True)
        assert hsm.key.kty == "EC-HSM", hsm.key.kty
        listed = sorted(p.name for p in kc.list_properties_of_keys(max_page_size=2))
        assert listed == ["k-hsm", "k-p256", "k-p256k"], listed
        vers = list(kc.list_properties_of_key_versions("k-p256"))
        assert len(vers) == 2
        return "P-256 + P-256K (2 versions each), EC-HSM, list=%d" % len(listed)

    for crv, alg in (("P-256", SignatureAlgorithm.es256), ("P-256K", SignatureAlgorithm.es256_k)):
        @check("sign/verify 64x %s" % alg.value)
        def _(crv=crv, alg=alg):
            key = keys[crv]
            curve = ec.SECP256R1() if crv == "P-256" else ec.SECP256K1()
            pub = ec.EllipticCurvePublicNumbers(int.from_bytes(key.key.x, "big"),
                                                int.from_bytes(key.key.y, "big"), curve).public_key()
            cc = CryptographyClient(key, credential, **common)
            n = ORDER[crv]
            high = 0
            for i in range(64):
                digest = hashlib.sha256(b"msg-%s-%d" % (crv.encode(), i)).digest()
                res = cc.sign(alg, digest)
                assert res.key_id == key.id, (res.key_id, key.id)
                sig = res.signature
                assert len(sig) == 64
                r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
                pub.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
                if s > n // 2:
                    high += 1
            assert 10 <= high <= 54, "high-S count %d out of [10,54]" % high
            # version-less key id also signs
            cc2 = CryptographyClient("%s/keys/%s" % (url, key.name), credential, **common)
            d = hashlib.sha256(b"x").digest()
            sig = cc2.sign(alg, d).signature
            pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                       d, ec.ECDSA(Prehashed(hashes.SHA256())))
            return "64 verified, high-S=%d/64" % high

    @check("alg/curve mismatch -> 400")
    def _():
        cc = CryptographyClient(keys["P-256"], credential, **common)
        try:
            cc.sign(SignatureAlgorithm.es256_k, b"\0" * 32)
            raise AssertionError("expected 400")
        except HttpResponseError as e:
            assert e.status_code == 400 and e.error.code == "BadParameter", (e.status_code, e.error)
        try:
            kc.get_key("no-such-key")
            raise AssertionError("expected 404")
        except ResourceNotFoundError as e:
            assert e.error.code == "KeyNotFound", e.error.code
        return "BadParameter; missing key -> KeyNotFound"

    @check("secrets set/list/get 60")
    def _():
        want = {}
        for i in range(60):
            name = "sec-%02d" % i
            val = os.urandom(32).hex()
            want[name] = val
            b = sc.set_secret(name, val, tags={"palisade": "signer", "idx": str(i)},
                              content_type="text/plain")
            assert b.value == val and b.properties.tags["idx"] == str(i)
        sc.set_secret("sec-00", want["sec-00"] + "-v2")  # new version
        want["sec-00"] += "-v2"
        pages = 0
        seen = {}
        for page in sc.list_properties_of_secrets().by_page():
            pages += 1
            for p in page:
                seen[p.name] = p
        assert set(seen) == set(want), (len(seen), len(want))
        assert pages == 3, pages  # default page size 25 -> 25+25+10
        assert seen["sec-05"].tags == {"palisade": "signer", "idx": "5"} and seen["sec-05"].content_type == "text/plain"
        small = list(sc.list_properties_of_secrets(max_page_size=7))
        assert len(small) == 60
        for name, val in want.items():
            assert sc.get_secret(name).value == val, name
        vers = list(sc.list_properties_of_secret_versions("sec-00"))
        assert len(vers) == 2
        old = [v for v in vers if v.version != sc.get_secret("sec-00").properties.version][0]
        assert sc.get_secret("sec-00", old.version).value == want["sec-00"][:-3]
        return "60 set, %d pages, all values back, versions ok" % pages

    @check("missing secret -> 404")
    def _():
        try:
            sc.get_secret("does-not-exist")
            raise AssertionError("expected ResourceNotFoundError")
        except ResourceNotFoundError as e:
            assert e.error.code == "SecretNotFound", e.error.code
        return "ResourceNotFoundError SecretNotFound"

    @check("bulk 10000 secrets + paging")
    def _():
        t = time.time()
        r = hook("/_standin/bulk-secrets", {"prefix": "bls-", "values": ["%064x" % i for i in range(10000)],
                                             "tags": {"bulk": "1"}})
        assert r["count"] == 10000 and r["last"] == "bls-9999", r
        tb = time.time() - t
        assert sc.get_secret("bls-9999").value == "%064x" % 9999
        # walk all pages over one raw keep-alive connection (what a non-SDK client does)
        tok = credential.get_token("https://vault.azure.net/.default").token
        conn = http.client.HTTPSConnection("127.0.0.1", ready["port"], context=sslctx)
        nxt, n, pages, t = "/secrets?api-version=7.5", 0, 0, time.time()
        page_times = []
        while nxt:
            t1 = time.time()
            conn.request("GET", nxt, headers={"Authorization": "Bearer " + tok})
            resp = conn.getresponse()
            body = json.loads(resp.read())
            assert resp.status == 200, (resp.status, body)
            page_times.append(time.time() - t1)
            pages += 1
            n += len(body["value"])
            link = body.get("nextLink")
            assert link is None or link.startswith(url + "/secrets?"), link
            nxt = link[len(url):] if link else None
        conn.close()
        assert n == 10060, n
        assert pages == (10060 + 24) // 25, pages
        traw = time.time() - t
        t = time.time()
        got = sum(1 for p in sc.list_properties_of_secrets() if p.name.startswith("bls-"))
        assert got == 10000, got
        return "bulk %.2fs; raw walk %d items/%d pages in %.2fs (first page %.1fms, last %.1fms); SDK walk %.2fs" % (
            tb, n, pages, traw, page_times[0] * 1000, page_times[-1] * 1000, time.time() - t)

    @check("wrong client secret -> 401")
    def _():
        bad = cred("wrong-secret")
        try:
            bad.get_token("https://vault.azure.net/.default")
            raise AssertionError("expected ClientAuthenticationError")
        except ClientAuthenticationError as e:
            assert "AADSTS7000215" in str(e), str(e)[:200]
        try:
            SecretClient(url, cred("wrong-secret"), **common).get_secret("sec-01")
            raise AssertionError("expected ClientAuthenticationError via SecretClient")
        except ClientAuthenticationError:
            pass
        try:
            ClientSecretCredential(tenant, "not-the-app", "s3cr3t-for-tests", authority=authority,
                                   disable_instance_discovery=True, connection_verify=ca
                                   ).get_token("https://vault.azure.net/.default")
            raise AssertionError("expected ClientAuthenticationError for wrong client id")
        except ClientAuthenticationError as e:
            assert "AADSTS700016" in str(e), str(e)[:200]
        return "ClientAuthenticationError AADSTS7000215 (secret) / AADSTS700016 (client id)"

    @check("client certificate")
    def _():
        for k in ("client_cert_pfx", "client_cert_pfx_nopass", "client_cert_pem"):
            assert os.path.isfile(ready[k]), (k, ready.get(k))
        assert ready["client_cert_password"] == "standin-pfx", ready["client_cert_password"]
        cc = CertificateCredential(tenant, client_id, certificate_path=ready["client_cert_pem"],
                                   authority=authority, disable_instance_discovery=True,
                                   connection_verify=ca)
        tok = cc.get_token("https://vault.azure.net/.default")
        assert tok.token and tok.expires_on > time.time() + 3000, tok.expires_on
        val = SecretClient(url, cc, **common).get_secret("sec-01").value
        assert val == sc.get_secret("sec-01").value
        # a different self-signed cert (same CN) is not registered for the app
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)])
        now = datetime.datetime.now(datetime.timezone.utc)
        other = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                 .public_key(key.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - datetime.timedelta(minutes=5))
                 .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
        other_pem = os.path.join(tmp, "other-cert.pem")
        with open(other_pem, "wb") as f:
            f.write(other.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        try:
            CertificateCredential(tenant, client_id, certificate_path=other_pem, authority=authority,
                                  disable_instance_discovery=True, connection_verify=ca
                                  ).get_token("https://vault.azure.net/.default")
            raise AssertionError("expected ClientAuthenticationError for an unregistered cert")
        except ClientAuthenticationError as e:
            assert "AADSTS700027" in str(e), str(e)[:300]
        return "CertificateCredential(PEM) -> token -> get_secret; other cert -> AADSTS700027"

    @check("client assertion (raw JWT)")
    def _():
        # what the Rust SDK sends: RS256, x5t = *standard* base64 SHA-1, nbf = now, from the .pfx
        with open(ready["client_cert_pfx"], "rb") as f:
            key, cert, _ = pkcs12.load_key_and_certificates(f.read(), ready["client_cert_password"].encode())
        with open(ready["client_cert_pfx_nopass"], "rb") as f:
            key2, cert2, _ = pkcs12.load_key_and_certificates(f.read(), None)
        assert cert2 == cert and key2.private_numbers() == key.private_numbers()
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == client_id
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        der = cert.public_bytes(serialization.Encoding.DER)
        endpoint = "%s/%s/oauth2/v2.0/token" % (authority, tenant)
        b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        std_x5t = base64.b64encode(hashlib.sha1(der).digest()).decode()

        def jwt(header=None, claims=None, signer=key, tamper=False):
            now = int(time.time())
            h = {"alg": "RS256", "typ": "JWT", "x5t": std_x5t}
            h.update(header or {})
            c = {"aud": endpoint, "exp": now + 300, "iss": client_id, "jti": str(uuid.uuid4()),
                 "nbf": now, "sub": client_id}
            c.update(claims or {})
            c = {k: v for k, v in c.items() if v is not None}
            h = {k: v for k, v in h.items() if v is not None}
            si = b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(c).encode())
            sig = signer.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
            if tamper:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
            return si + "." + b64u(sig)

        def post(assertion, cid=client_id):
            form = {"grant_type": "client_credentials", "scope": "https://vault.azure.net/.default",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion}
            if cid is not None:
                form["client_id"] = cid
            req = urllib.request.Request(endpoint, data=urllib.parse.urlencode(form).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(req, context=sslctx) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        def ok(assertion, **kw):
            st, body = post(assertion, **kw)
            assert st == 200 and body["token_type"] == "Bearer" and body["access_token"], (st, body)
            return body["access_token"]

        def fails(assertion, code, status=401):
            st, body = post(assertion)
            assert st == status and body["error_codes"] == [code], (code, st, body)
            assert body["error_description"].startswith("AADSTS%d:" % code), body
            return body["error"]

        tok = ok(jwt())
        c = http.client.HTTPSConnection("127.0.0.1", ready["port"], context=sslctx)
        c.request("GET", "/secrets/sec-01?api-version=7.5", headers={"Authorization": "Bearer " + tok})
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["value"], r.status
        c.close()
        ok(jwt({"x5t": b64u(hashlib.sha1(der).digest())}))  # base64url (Python SDK style)
        ok(jwt({"x5t": std_x5t.rstrip("=")}))  # unpadded standard
        ok(jwt({"x5t": None, "x5t#S256": b64u(hashlib.sha256(der).digest())}))
        ok(jwt({"x5t#S256": base64.b64encode(hashlib.sha256(der).digest()).decode()}))
        ok(jwt(), cid=None)  # client_id optional: taken from iss
        ok(jwt(claims={"nbf": None}))
        ok(jwt(claims={"nbf": int(time.time()) + 240}))  # within the 5-minute skew
        assert fails(jwt(tamper=True), 700027) == "invalid_client"
        assert fails(jwt({"x5t": b64u(hashlib.sha1(b"other").digest())}), 700027) == "invalid_client"
        assert fails(jwt({"x5t": None}), 700027) == "invalid_client"
        assert fails(jwt({"x5t#S256": b64u(hashlib.sha1(der).digest())}), 700027) == "invalid_client"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fails(jwt(signer=other), 700027)
        fails(jwt(claims={"aud": authority + "/other-tenant/oauth2/v2.0/token"}), 50013)
        fails(jwt(claims={"aud": None}), 50013)
        fails(jwt(claims={"exp": int(time.time()) - 5}), 700024)
        fails(jwt(claims={"nbf": int(time.time()) + 900}), 700024)
        fails(jwt(claims={"iss": "someone-else"}), 700021)
        fails(jwt(claims={"sub": "someone-else"}), 700021)
        fails(jwt({"alg": "HS256"}), 5002738)
        fails("not-a-jwt", 50027)
        return "Rust-style (std b64 x5t) + b64url/unpadded/x5t#S256 ok; bad sig/thumbprint 700027, " \
               "aud 50013, exp/nbf 700024, iss/sub 700021, alg 5002738, malformed 50027"

    @check("unsupported api-version")
    def _():
        c = SecretClient(url, credential, api_version="7.3", verify_challenge_resource=False,
                         connection_verify=ca)
        try:
            c.get_secret("sec-01")
            raise AssertionError("expected 400")
        except HttpResponseError as e:
            assert e.status_code == 400 and e.error.code == "BadParameter", (e.status_code, e.error)
        return "7.3 -> 400 BadParameter"

    @check("outage on/off")
    def _():
        c = SecretClient(url, credential, retry_total=0, **common)
        assert c.get_secret("sec-01").value
        hook("/_standin/outage", {"on": True})
        try:
            try:
                c.get_secret("sec-01")
                raise AssertionError("expected HttpResponseError")
            except HttpResponseError as e:
                assert e.status_code == 503, e.status_code
        finally:
            hook("/_standin/outage", {"on": False})
        assert c.get_secret("sec-01").value
        # hang mode: request blocks until outage is switched off
        hook("/_standin/outage", {"on": True, "mode": "hang"})
        res = {}
        th = threading.Thread(target=lambda: res.setdefault("v", c.get_secret("sec-02").value))
        th.start()
        time.sleep(0.5)
        assert "v" not in res
        hook("/_standin/outage", {"on": False})
        th.join(10)
        assert res.get("v")
        return "503 -> HttpResponseError, hang released, recovered"

    @check("managed identity (App Service)")
    def _():
        env = {"IDENTITY_ENDPOINT": url + "/msi/token", "IDENTITY_HEADER": "idh-123"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            mi = ManagedIdentityCredential(connection_verify=ca)
            c = SecretClient(url, mi, **common)
            assert c.get_secret("sec-03").value
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return "IDENTITY_ENDPOINT/IDENTITY_HEADER -> GET /msi/token api-version=2019-08-01"

    @check("managed identity (IMDS)")
    def _():
        for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT"):
            os.environ.pop(k, None)
        os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = url
        try:
            mi = ManagedIdentityCredential(connection_verify=ca)
            c = SecretClient(url, mi, **common)
            assert c.get_secret("sec-04").value
        finally:
            os.environ.pop("AZURE_POD_IDENTITY_AUTHORITY_HOST", None)
        return "AZURE_POD_IDENTITY_AUTHORITY_HOST -> GET /metadata/identity/oauth2/token"

    @check("stats + concurrency")
    def _():
        hook("/_standin/stats/reset", {})
        hook("/_standin/latency", {"ms": 300})
        ths = [threading.Thread(target=lambda i=i: sc.get_secret("sec-%02d" % i)) for i in range(8)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        hook("/_standin/latency", {"ms": 0})
        st = hook("/_standin/stats")
        assert st["routes"].get("GET /secrets/{name}", 0) >= 8, st["routes"]
        assert 4 <= st["max_inflight"] <= 8, st["max_inflight"]
        return "routes=%s max_inflight=%d" % (json.dumps(st["routes"], sort_keys=True), st["max_inflight"])

    total = time.time() - T0
    print("%s: %d failed, total %.2fs" % ("FAILED" if FAILS else "ALL PASSED", len(FAILS), total))
    if total >= 60:
        print("too slow (>= 60 s)")
        return 1
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
