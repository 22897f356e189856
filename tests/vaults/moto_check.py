#!/usr/bin/env python3
"""Proves tests/vaults/moto_server.py a faithful stand-in for AWS KMS + Secrets Manager.

    tests/vaults/.venv/bin/python tests/vaults/moto_check.py [--quick]

Starts moto_server.py itself (three times: patched, with --no-digest-patch, and with
--tls-dir for the HTTPS checks), drives
it with boto3 and checks the results with `cryptography`.  Exit 0 only if every check
passes.  --quick skips the 10,000-secret timings.
"""

import argparse
import base64
import json
import os
import http.client
import secrets as pysecrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.exceptions import SSLError as BotoSSLError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "moto_server.py")
REGION = "us-east-1"
CURVES = {
    # KeySpec: (cryptography curve name, group order n)
    "ECC_SECG_P256K1": (
        "secp256k1",
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    ),
    "ECC_NIST_P256": (
        "secp256r1",
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
}

FAILED = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILED.append(what)
    return ok


def info(msg):
    print("     " + msg, flush=True)


# --------------------------------------------------------------------------------------


class Server:
    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", "--exit-on-stdin-eof", *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = [None]
        t = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()))
        t.start()
        t.join(30)
        if not line[0]:
            self.proc.kill()
            raise RuntimeError("moto_server.py printed no ready line within 30 s")
        self.ready = json.loads(line[0])
        assert self.ready["ready"] is True
        self.endpoint = self.ready["endpoint"]

    def client(self, service, verify=None, **cfg):
        if verify is None:
            verify = self.ready.get("ca")  # None (botocore default) over plain HTTP
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            verify=verify,
            config=Config(**cfg) if cfg else None,
        )

    def harness(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.endpoint + path, data=data, method="GET" if body is None else "POST"
        )
        ctx = ssl.create_default_context(cafile=self.ready["ca"]) if "ca" in self.ready else None
        with urllib.request.urlopen(req, timeout=600, context=ctx) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.returncode


# --------------------------------------------------------------------------------------


def kms_checks(srv):
    kms = srv.client("kms")
    for spec, (curve_name, n) in CURVES.items():
        key = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        kid = key["KeyId"]
        check(
            key.get("KeySpec") == spec
            and "ECDSA_SHA_256" in key.get("SigningAlgorithms", []),
            f"{spec}: CreateKey SIGN_VERIFY, SigningAlgorithms={key.get('SigningAlgorithms')}",
        )
        pk = kms.get_public_key(KeyId=kid)
        pub = load_der_public_key(pk["PublicKey"])
        check(
            isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == curve_name,
            f"{spec}: GetPublicKey is DER SubjectPublicKeyInfo on {pub.curve.name}"
            f" (KeySpec={pk.get('KeySpec')}, KeyUsage={pk.get('KeyUsage')})",
        )
        ok = high = 0
        for _ in range(64):
            digest = os.urandom(32)
            sig = kms.sign(
                KeyId=kid,
                Message=digest,
                MessageType="DIGEST",
                SigningAlgorithm="ECDSA_SHA_256",
            )["Signature"]
            try:
                pub.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
                ok += 1
            except InvalidSignature:
                pass
            _, s = decode_dss_signature(sig)
            high += s > n // 2
        check(ok == 64, f"{spec}: {ok}/64 DIGEST signatures verify over the digest as prehashed")
        check(10 <= high <= 54, f"{spec}: {high}/64 high-S signatures (both kinds occur, as on KMS)")

        # KMS Verify with DIGEST, a wrong digest, a bad digest length, and RAW.
        digest = os.urandom(32)
        sig = kms.sign(KeyId=kid, Message=digest, MessageType="DIGEST",
                       SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        v = kms.verify(KeyId=kid, Message=digest, MessageType="DIGEST", Signature=sig,
                       SigningAlgorithm="ECDSA_SHA_256")
        check(v["SignatureValid"] is True, f"{spec}: KMS Verify(DIGEST) accepts its signature")
        try:
            kms.verify(KeyId=kid, Message=os.urandom(32), MessageType="DIGEST",
                       Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
            check(False, f"{spec}: KMS Verify(DIGEST) rejects a wrong digest")
        except ClientError as e:
            code = e.response["Error"]["Code"]
            check(code == "KMSInvalidSignatureException",
                  f"{spec}: KMS Verify(DIGEST) rejects a wrong digest with {code}")
        try:
            kms.sign(KeyId=kid, Message=os.urandom(31), MessageType="DIGEST",
                     SigningAlgorithm="ECDSA_SHA_256")
            check(False, f"{spec}: Sign(DIGEST) rejects a 31-byte digest")
        except ClientError as e:
            code = e.response["Error"]["Code"]
            check(code == "ValidationException",
                  f"{spec}: Sign(DIGEST) rejects a 31-byte digest with {code}")
        msg = b"palisade raw message " + os.urandom(8)
        sig = kms.sign(KeyId=kid, Message=msg, MessageType="RAW",
                       SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        try:
            pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
            check(True, f"{spec}: RAW signature verifies over sha256(message)")
        except InvalidSignature:
            check(False, f"{spec}: RAW signature verifies over sha256(message)")


def kms_unpatched_checks(srv):
    kms = srv.client("kms")
    kid = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    pub = load_der_public_key(kms.get_public_key(KeyId=kid)["PublicKey"])
    prehashed_ok = 0
    what = set()
    for _ in range(16):
        digest = os.urandom(32)
        sig = kms.sign(KeyId=kid, Message=digest, MessageType="DIGEST",
                       SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        try:
            pub.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            prehashed_ok += 1
        except InvalidSignature:
            pass
        for label, m in (("sha256(digest)", digest),
                         ("sha256(base64(digest))", base64.b64encode(digest))):
            try:
                pub.verify(sig, m, ec.ECDSA(hashes.SHA256()))
                what.add(label)
            except InvalidSignature:
                pass
    check(prehashed_ok == 0,
          f"--no-digest-patch: {prehashed_ok}/16 DIGEST signatures verify as prehashed "
          "(stock moto hashes the digest again: the patch is needed)")
    info(f"stock moto actually signed: ECDSA over {sorted(what) or ['(unknown)']}")


# --------------------------------------------------------------------------------------


def list_all(sm, filters, page=None):
    out, pages, token = [], 0, None
    while True:
        kw = {"Filters": filters}
        if page:
            kw["MaxResults"] = page
        if token:
            kw["NextToken"] = token
        r = sm.list_secrets(**kw)
        pages += 1
        out += r["SecretList"]
        token = r.get("NextToken")
        if not token:
            return out, pages


def secrets_checks(srv):
    sm = srv.client("secretsmanager")
    prefix = f"palisade-check/{pysecrets.token_hex(4)}/"
    names = [f"{prefix}key-{i:03d}" for i in range(50)]
    for i, name in enumerate(names):
        sm.create_secret(
            Name=name,
            SecretString=json.dumps({"i": i, "v": f"value-{i}"}),
            Tags=[{"Key": "palisade", "Value": "check"},
                  {"Key": "parity", "Value": "even" if i % 2 == 0 else "odd"}],
        )
    for i in range(5):  # decoys outside the prefix
        sm.create_secret(Name=f"other/decoy-{i}", SecretString="x",
                         Tags=[{"Key": "decoy", "Value": "odd"}])
    check(True, "Secrets Manager: created 50 tagged secrets under a prefix (+5 decoys)")

    got, pages = list_all(sm, [{"Key": "name", "Values": [prefix]}], page=7)
    check(sorted(s["Name"] for s in got) == names and pages == 8,
          f"ListSecrets name-prefix filter + paging (MaxResults=7): {len(got)} secrets in {pages} pages")
    check(all({"Key": "parity", "Value": "even" if int(s["Name"][-3:]) % 2 == 0 else "odd"}
              in s.get("Tags", []) for s in got),
          "ListSecrets entries carry their Tags")
    got, _ = list_all(sm, [{"Key": "tag-key", "Values": ["parity"]}])
    check(len(got) == 50, f"ListSecrets tag-key filter: {len(got)} (want 50)")
    got, _ = list_all(sm, [{"Key": "tag-value", "Values": ["odd"]}])
    check(len(got) == 30, f"ListSecrets tag-value filter 'odd': {len(got)} (want 25 + 5 decoys)")
    got, _ = list_all(sm, [{"Key": "name", "Values": [prefix]},
                           {"Key": "tag-value", "Values": ["even"]}])
    check(len(got) == 25, f"ListSecrets name AND tag-value filters: {len(got)} (want 25)")
    got, _ = list_all(sm, [{"Key": "name", "Values": ["!" + prefix]}])
    check(len(got) >= 5 and not any(s["Name"].startswith(prefix) for s in got),
          f"ListSecrets negated name filter '!prefix': {len(got)} (none under the prefix)")

    arn = sm.describe_secret(SecretId=names[7])["ARN"]
    by_arn = sm.get_secret_value(SecretId=arn)
    by_partial = sm.get_secret_value(SecretId=arn.rsplit("-", 1)[0])
    check(by_arn["Name"] == names[7] and by_partial["Name"] == names[7]
          and json.loads(by_arn["SecretString"])["i"] == 7,
          "GetSecretValue by full ARN and by partial ARN (no suffix)")
    vals = [json.loads(sm.get_secret_value(SecretId=n)["SecretString"]) for n in names]
    check(vals == [{"i": i, "v": f"value-{i}"} for i in range(50)],
          "GetSecretValue returns all 50 values")
    try:
        sm.get_secret_value(SecretId=prefix + "missing")
        check(False, "GetSecretValue of a missing secret fails")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "ResourceNotFoundException",
              f"GetSecretValue of a missing secret: {e.response['Error']['Code']}")

    # BatchGetSecretValue: by id list (max 20) and by filter with paging.
    try:
        r = sm.batch_get_secret_value(SecretIdList=names[:20] + [prefix + "missing"])
        byid = {v["Name"]: json.loads(v["SecretString"])["i"] for v in r["SecretValues"]}
        errs = [e.get("ErrorCode") for e in r.get("Errors", [])]
        check(byid == {names[i]: i for i in range(20)},
              f"BatchGetSecretValue(SecretIdList): {len(byid)} values, errors={errs}")
        got, token, pages = [], None, 0
        while True:
            kw = {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 20}
            if token:
                kw["NextToken"] = token
            r = sm.batch_get_secret_value(**kw)
            got += r["SecretValues"]
            pages += 1
            token = r.get("NextToken")
            if not token:
                break
        check(sorted(v["Name"] for v in got) == names,
              f"BatchGetSecretValue(Filters, MaxResults=20): {len(got)} values in {pages} pages")
    except ClientError as e:
        check(False, f"BatchGetSecretValue supported: {e}")
    return prefix


# --------------------------------------------------------------------------------------


def outage_checks(srv):
    fast = dict(retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=1, read_timeout=2)
    sm = srv.client("secretsmanager", **fast)
    kms = srv.client("kms", **fast)
    sm.list_secrets(MaxResults=1)

    for mode, expect in (("503", "ServiceUnavailableException"),
                         ("500", "InternalFailure"),
                         ("throttle", "ThrottlingException")):
        srv.harness("/_harness/outage", {"on": True, "mode": mode})
        try:
            sm.list_secrets(MaxResults=1)
            check(False, f"outage {mode}: call fails")
        except ClientError as e:
            code = e.response["Error"]["Code"]
            check(code == expect, f"outage {mode}: boto3 call fails with {code} "
                  f"(HTTP {e.response['ResponseMetadata'].get('HTTPStatusCode')})")
        srv.harness("/_harness/outage", {"on": False})
        sm.list_secrets(MaxResults=1)
        check(True, f"outage {mode} off: call works again")

    srv.harness("/_harness/outage", {"on": True, "mode": "hang"})
    t0 = time.monotonic()
    try:
        kms.list_keys()
        check(False, "outage hang: call times out")
    except ReadTimeoutError:
        check(True, f"outage hang: boto3 read timeout after {time.monotonic() - t0:.1f} s")
    srv.harness("/_harness/outage", {"on": False})
    kms.list_keys()
    check(True, "outage hang off: call works again")

    srv.harness("/_harness/outage", {"on": True, "mode": "reset"})
    try:
        kms.list_keys()
        check(False, "outage reset: call fails")
    except (ConnectionClosedError, EndpointConnectionError) as e:
        check(True, f"outage reset: {type(e).__name__}")
    srv.harness("/_harness/outage", {"on": False})
    kms.list_keys()

    srv.harness("/_harness/outage", {"on": True, "mode": "503",
                                     "actions": ["secretsmanager.GetSecretValue"], "count": 2})
    sm.list_secrets(MaxResults=1)
    fails = 0
    for _ in range(3):
        try:
            sm.get_secret_value(SecretId="other/decoy-0")
        except ClientError:
            fails += 1
    check(fails == 2 and not srv.harness("/_harness/stats")["outage"]["on"],
          f"outage scoped to one action with count=2: ListSecrets ok, {fails}/3 GetSecretValue failed")


def stats_checks(srv, prefix):
    sm = srv.client("secretsmanager", max_pool_connections=32)
    srv.harness("/_harness/stats/reset", {})
    srv.harness("/_harness/latency", {"ms": 50, "actions": ["secretsmanager.GetSecretValue"]})
    names = [f"{prefix}key-{i:03d}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: sm.get_secret_value(SecretId=n), names))
    srv.harness("/_harness/latency", {"ms": 0})
    st = srv.harness("/_harness/stats")
    check(st["requests"].get("secretsmanager.GetSecretValue") == 40,
          f"stats: per-action count {st['requests']}")
    check(2 <= st["max_in_flight"] <= 8,
          f"stats: max_in_flight={st['max_in_flight']} with 8 client threads (bounded, > 1)")


# --------------------------------------------------------------------------------------


def timing(srv, n_boto3, n_bulk, n_get):
    sm = srv.client("secretsmanager", max_pool_connections=32)
    fig = {}

    p1 = f"timing-boto3/{pysecrets.token_hex(3)}/"
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: sm.create_secret(Name=f"{p1}{i:06d}", SecretString=f"v{i}",
                                                 Tags=[{"Key": "t", "Value": "boto3"}]),
                      range(n_boto3)))
    fig["boto3_create"] = time.monotonic() - t0
    info(f"CreateSecret x{n_boto3} through boto3 (8 threads): {fig['boto3_create']:.2f} s "
         f"({n_boto3 / fig['boto3_create']:.0f}/s; 10,000 would take "
         f"~{fig['boto3_create'] * 10000 / n_boto3:.0f} s)")

    p2 = f"timing-bulk/{pysecrets.token_hex(3)}/"
    t0 = time.monotonic()
    r = srv.harness("/_harness/bulk-secrets", {
        "prefix": p2, "values": [f"value-{i}" for i in range(n_bulk)],
        "tags": {"t": "bulk"}, "region": REGION})
    fig["bulk_create"] = time.monotonic() - t0
    check(r["created"] == n_bulk, f"POST /_harness/bulk-secrets created {r['created']}")
    info(f"bulk-secrets x{n_bulk}: {fig['bulk_create']:.2f} s (backend {r['elapsed_s']} s)")

    t0 = time.monotonic()
    listed, pages = list_all(sm, [{"Key": "name", "Values": [p2]}], page=100)
    fig["list"] = time.monotonic() - t0
    check(len(listed) == n_bulk, f"ListSecrets prefix, MaxResults=100: {len(listed)} in {pages} pages")
    info(f"ListSecrets of {n_bulk} (of {n_bulk + n_boto3 + 55} total): {fig['list']:.2f} s")

    t0 = time.monotonic()
    got, token, calls = 0, None, 0
    while True:
        kw = {"Filters": [{"Key": "name", "Values": [p2]}], "MaxResults": 20}
        if token:
            kw["NextToken"] = token
        r = sm.batch_get_secret_value(**kw)
        calls += 1
        got += len(r["SecretValues"])
        token = r.get("NextToken")
        if not token:
            break
    fig["batch_get"] = time.monotonic() - t0
    check(got == n_bulk, f"BatchGetSecretValue(Filters, MaxResults=20): {got} values, {calls} calls")
    info(f"BatchGetSecretValue of {n_bulk}: {fig['batch_get']:.2f} s")

    ids = [s["Name"] for s in listed]
    t0 = time.monotonic()
    vals = []
    for i in range(0, len(ids), 20):
        r = sm.batch_get_secret_value(SecretIdList=ids[i:i + 20])
        vals += [v["SecretString"] for v in r["SecretValues"]]
    fig["batch_get_ids"] = time.monotonic() - t0
    check(sorted(vals) == sorted(f"value-{i}" for i in range(n_bulk)),
          f"BatchGetSecretValue(SecretIdList x20) returns all {len(vals)} values")
    info(f"BatchGetSecretValue(SecretIdList) of {n_bulk}: {fig['batch_get_ids']:.2f} s")

    sample = ids[:: max(1, len(ids) // n_get)][:n_get]
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        vals = list(pool.map(lambda n: sm.get_secret_value(SecretId=n)["SecretString"], sample))
    fig["get_each"] = time.monotonic() - t0
    check(len(vals) == len(sample) and all(v.startswith("value-") for v in vals),
          f"GetSecretValue x{len(sample)} (8 threads) returns the values")
    info(f"GetSecretValue x{len(sample)} through boto3 (8 threads): {fig['get_each']:.2f} s "
         f"({len(sample) / fig['get_each']:.0f}/s; all {n_bulk}: "
         f"~{fig['get_each'] * n_bulk / len(sample):.0f} s)")
    info("summary: " + json.dumps({k: round(v, 2) for k, v in fig.items()}))
    return fig


def tls_checks(srv, tls_dir):
    from cryptography import x509

    r = srv.ready
    ca = r.get("ca")
    check(
        r["endpoint"] == f"https://127.0.0.1:{r['port']}"
        and ca == os.path.join(os.path.abspath(tls_dir), "ca.pem")
        and os.path.isfile(ca),
        f"--tls-dir ready line: endpoint {r['endpoint']}, ca {ca}",
    )

    # The certificates, as a strict verifier (rustls/webpki) wants them.
    ca_cert = x509.load_pem_x509_certificate(open(ca, "rb").read())
    leaf = x509.load_pem_x509_certificates(open(os.path.join(tls_dir, "server.pem"), "rb").read())[0]
    ext = lambda c, t: c.extensions.get_extension_for_class(t)  # noqa: E731
    cbc, cku = ext(ca_cert, x509.BasicConstraints), ext(ca_cert, x509.KeyUsage).value
    lbc, lku = ext(leaf, x509.BasicConstraints), ext(leaf, x509.KeyUsage).value
    san = ext(leaf, x509.SubjectAlternativeName).value
    check(
        cbc.critical and cbc.value.ca and cbc.value.path_length == 0 and cku.key_cert_sign
        and lbc.critical and not lbc.value.ca and lku.digital_signature
        and not lku.key_cert_sign
        and x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in ext(leaf, x509.ExtendedKeyUsage).value
        and [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        and san.get_values_for_type(x509.DNSName) == ["localhost"]
        and ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier
        == ext(ca_cert, x509.SubjectKeyIdentifier).value.digest
        and leaf.issuer == ca_cert.subject,
        "TLS certs: CA (CA:true pathlen 0, keyCertSign); leaf CA:false, digitalSignature, "
        "serverAuth, SAN IP:127.0.0.1 DNS:localhost, AKI = CA SKI",
    )

    # Python's strict X.509 verification; connection reuse as over HTTP.  werkzeug 3.x
    # answers every response with "Connection: close" (plain HTTP too: no keep-alive in
    # moto_server.py at all), so each request is a fresh TCP + TLS connection; http.client
    # reconnects by itself.
    ctx = ssl.create_default_context(cafile=ca)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    conn = http.client.HTTPSConnection("127.0.0.1", r["port"], context=ctx, timeout=10)
    try:
        oks, conns, version = [], [], "-"
        for _ in range(3):
            conn.request("GET", "/_harness/health")
            version = conn.sock.version()
            resp = conn.getresponse()
            oks.append(resp.status == 200 and json.loads(resp.read()) == {"ok": True})
            conns.append(resp.getheader("Connection"))
        check(all(oks), f"HTTPS with VERIFY_X509_STRICT: 3 requests ok ({version}, "
              f"Connection: {conns[0]}, as over HTTP)")
    finally:
        conn.close()

    # boto3 with verify=<ca.pem>: KMS CreateKey + GetPublicKey.
    kms = srv.client("kms", verify=ca)
    try:
        kid = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        pub = load_der_public_key(kms.get_public_key(KeyId=kid)["PublicKey"])
        ok = isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
    except Exception as e:  # noqa: BLE001
        ok, kid = False, f"{type(e).__name__}: {e}"
    check(ok, f"boto3 over HTTPS, verify=ca.pem: KMS CreateKey + GetPublicKey ({kid})")

    # boto3 with the default trust store must refuse the throw-away CA.
    plain = srv.client("kms", verify=True, retries={"max_attempts": 1}, connect_timeout=5)
    try:
        plain.list_keys()
        got = "no error"
    except BotoSSLError as e:
        got = f"SSLError: {str(e)[:120]}"
    except Exception as e:  # noqa: BLE001
        got = f"{type(e).__name__}: {e}"
    check(got.startswith("SSLError") and "CERTIFICATE_VERIFY_FAILED" in got,
          f"boto3 over HTTPS, default verify: fails ({got})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 10,000-secret timings")
    ap.add_argument("--boto3-n", type=int, default=10000,
                    help="secrets created through boto3 in the timing (default 10000)")
    ap.add_argument("--bulk-n", type=int, default=10000,
                    help="secrets created through POST /_harness/bulk-secrets (default 10000)")
    ap.add_argument("--get-n", type=int, default=2000,
                    help="individual GetSecretValue calls timed (default 2000)")
    args = ap.parse_args()
    t_start = time.monotonic()

    srv = Server()
    try:
        info(f"ready line: {json.dumps(srv.ready)}")
        kms_checks(srv)
        prefix = secrets_checks(srv)
        outage_checks(srv)
        stats_checks(srv, prefix)
        if not args.quick:
            timing(srv, args.boto3_n, args.bulk_n, args.get_n)
    finally:
        rc = srv.stop()
        check(rc == 0, f"moto_server.py exits {rc} on SIGTERM")

    srv = Server("--no-digest-patch")
    try:
        kms_unpatched_checks(srv)
    finally:
        srv.stop()

    with tempfile.TemporaryDirectory(prefix="moto-tls-") as tls_dir:
        srv = Server("--tls-dir", tls_dir)
        try:
            info(f"TLS ready line: {json.dumps(srv.ready)}")
            tls_checks(srv, tls_dir)
        finally:
            rc = srv.stop()
            check(rc == 0, f"moto_server.py --tls-dir exits {rc} on SIGTERM")

    elapsed = time.monotonic() - t_start
    check(elapsed < 90, f"total {elapsed:.1f} s (< 90 s)")
    print(("ALL PASS" if not FAILED else f"{len(FAILED)} FAILED"), flush=True)
    return 0 if not FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
