#!/usr/bin/env python3
"""moto (AWS emulator) as a stand-in for AWS KMS and Secrets Manager, with a test harness.

Usage:
    tests/vaults/.venv/bin/python tests/vaults/moto_server.py [--port N] [--host H]
        [--no-digest-patch] [--verbose] [--exit-on-stdin-eof] [--tls-dir DIR]

Binds 127.0.0.1 (port 0 = ephemeral, the default), then prints ONE JSON line on stdout
when it accepts connections:

    {"ready": true, "port": P, "endpoint": "http://127.0.0.1:P", "digest_patch": true}

--tls-dir DIR: serve HTTPS instead.  At start a throw-away test CA (EC P-256, CA:true,
pathlen 0, keyCertSign) and a server certificate signed by it (SAN IP 127.0.0.1 + DNS
localhost, CA:false, digitalSignature, EKU serverAuth, SKI/AKI, valid from 5 minutes ago
for 1 day; strict enough for rustls/webpki) are made; DIR/ca.pem (trust this),
DIR/server.pem and DIR/server.key are written (DIR is created if missing).  The ready line
is then

    {"ready": true, "port": P, "endpoint": "https://127.0.0.1:P", "digest_patch": true,
     "ca": "/abs/DIR/ca.pem"}

The TLS handshake runs in the connection's own thread (not the accept loop), keep-alive
works as over HTTP, and TCP_NODELAY is set on accepted TLS connections.

and serves until SIGTERM / SIGINT.  Every AWS service moto knows is served on the one
endpoint (boto3: endpoint_url=endpoint, region us-east-1, any credentials; account
123456789012).  moto's own API is there too (POST /moto-api/reset wipes all backends).

Fidelity patches: KMS Sign/Verify honour MessageType=DIGEST (on by default, off with
--no-digest-patch), see _patch_kms_sign_verify(); GetPublicKey answers KeySpec, see
_patch_kms_get_public_key().

Harness endpoints (WSGI middleware in front of moto's app; JSON in, JSON out):

  POST /_harness/outage   {"on": true, "mode": "503"|"500"|"throttle"|"hang"|"reset",
                           "actions": ["kms.Sign", ...] (optional: only these actions),
                           "count": N (optional: fail only the next N matching requests),
                           "hang_max_s": S (optional, mode hang: default 60)}
                          {"on": false} ends the outage (and releases hung requests,
                          which then get a 503).
        503      -> HTTP 503 ServiceUnavailableException
        500      -> HTTP 500 InternalFailure / InternalServiceError
        throttle -> HTTP 400 ThrottlingException
        hang     -> no answer until the outage ends or hang_max_s passes (then 503)
        reset    -> connection closed without a response
  POST /_harness/latency  {"ms": N, "actions": [...] (optional)}  adds N ms before each
                          matching request is handled (0 = off); makes concurrency visible.
  GET  /_harness/stats    {"requests": {"kms.Sign": n, "secretsmanager.GetSecretValue": n,
                           ...}, "total": n, "in_flight": k, "max_in_flight": m,
                           "failed_by_harness": f, "outage": {...}, "latency": {...}}
                          Requests are counted when received (outage-failed ones too);
                          in_flight / max_in_flight cover the whole handling time
                          (latency and hangs included).
  POST /_harness/stats/reset   zeroes the counters (max_in_flight := current in_flight).
  POST /_harness/bulk-secrets  {"prefix": "p/", "values": ["v0", ...],
                           "names": [...] (optional; default prefix + "%06d" % (start+i)),
                           "start": 0 (optional),
                           "tags": {"k": "v"} (optional), "region": "us-east-1",
                           "account_id": "123456789012" (optional)}
                          creates the secrets directly in moto's in-process Secrets
                          Manager backend (same objects as CreateSecret) and answers
                          {"created": n, "first": name, "last": name, "elapsed_s": t}.
                          Names that already exist get a new version (like moto's
                          CreateSecret with the same name would not: that errors).
  GET  /_harness/health   {"ok": true}

Action names are "<service>.<Operation>" from the X-Amz-Target header (TrentService -> kms),
or "<METHOD> <path>" when there is none.
"""

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter

ACCOUNT_ID = "123456789012"


# --------------------------------------------------------------------------------------
# KMS fidelity patch
# --------------------------------------------------------------------------------------

_tls = threading.local()


def _patch_kms_sign_verify():
    """Make moto's KMS Sign/Verify honour MessageType=DIGEST, as real AWS KMS does.

    Why: moto 5.2.5 (moto/kms/responses.py KmsResponse.sign / .verify) reads `MessageType`
    and then ignores it: the message always goes through KmsBackend.sign ->
    moto/kms/utils.py ECDSAPrivateKey.sign(), i.e. cryptography's
    `private_key.sign(message, ec.ECDSA(SHA256()))`, which hashes it (again).  Real KMS,
    given MessageType=DIGEST, signs the supplied 32-byte digest as is.  A client that
    sends keccak256(tx) as a DIGEST (what an Ethereum signer does) would get back a
    signature over sha256(keccak256(tx)) from moto, and recover the wrong address.

    What: KmsResponse.sign / .verify are replaced with copies that run the backend call
    with the message type in a thread-local; ECDSAPrivateKey.sign / .verify and
    RSAPrivateKey.sign / .verify are wrapped so that, for MessageType=DIGEST, they check
    the digest length (as KMS does: "Digest is invalid length for algorithm ...") and
    sign/verify with utils.Prehashed(hash), i.e. without
    hashing again.  RAW keeps moto's behaviour (hash, then sign).  The patched Verify
    answers a bad signature with KMSInvalidSignatureException, as KMS does (stock moto
    returns SignatureValid=false).  Key checks (KeyUsage, algorithm vs key spec, disabled
    keys) stay moto's own, in KmsBackend.sign / .verify.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms import responses as kms_responses
    from moto.kms import utils as kms_utils
    from moto.kms.exceptions import ValidationException

    hash_for = {}
    for name in dir(kms_utils.SigningAlgorithm):
        if name.endswith("SHA_256"):
            hash_for[name] = hashes.SHA256
        elif name.endswith("SHA_384"):
            hash_for[name] = hashes.SHA384
        elif name.endswith("SHA_512"):
            hash_for[name] = hashes.SHA512

    def digest_algo(message, signing_algorithm):
        h = hash_for.get(str(getattr(signing_algorithm, "value", signing_algorithm)))
        if h is None:  # let moto's own validation produce the error
            return None
        h = h()
        if len(message) != h.digest_size:
            raise ValidationException(
                f"Digest is invalid length for algorithm {signing_algorithm}."
            )
        return Prehashed(h)

    def is_digest():
        return getattr(_tls, "message_type", "RAW") == "DIGEST"

    ec_sign, ec_verify = kms_utils.ECDSAPrivateKey.sign, kms_utils.ECDSAPrivateKey.verify

    def ecdsa_sign(self, message, signing_algorithm):
        if not is_digest():
            return ec_sign(self, message, signing_algorithm)
        kms_utils.validate_signing_algorithm(
            signing_algorithm, self.valid_signing_algorithms
        )
        algo = digest_algo(message, signing_algorithm)
        return self.private_key.sign(message, ec.ECDSA(algo))

    def ecdsa_verify(self, message, signature, signing_algorithm):
        if not is_digest():
            return ec_verify(self, message, signature, signing_algorithm)
        kms_utils.validate_signing_algorithm(
            signing_algorithm, self.valid_signing_algorithms
        )
        algo = digest_algo(message, signing_algorithm)
        try:
            self.private_key.public_key().verify(signature, message, ec.ECDSA(algo))
            return True
        except InvalidSignature:
            return False

    rsa_sign, rsa_verify = kms_utils.RSAPrivateKey.sign, kms_utils.RSAPrivateKey.verify
    rsa_pad = kms_utils.RSAPrivateKey._RSAPrivateKey__padding_and_hash_algorithm

    def rsa_sign_p(self, message, signing_algorithm):
        if not is_digest():
            return rsa_sign(self, message, signing_algorithm)
        kms_utils.validate_signing_algorithm(
            signing_algorithm, kms_utils.SigningAlgorithm.rsa_signing_algorithms()
        )
        pad, _ = rsa_pad(self, signing_algorithm)
        return self.private_key.sign(message, pad, digest_algo(message, signing_algorithm))

    def rsa_verify_p(self, message, signature, signing_algorithm):
        if not is_digest():
            return rsa_verify(self, message, signature, signing_algorithm)
        kms_utils.validate_signing_algorithm(
            signing_algorithm, kms_utils.SigningAlgorithm.rsa_signing_algorithms()
        )
        pad, _ = rsa_pad(self, signing_algorithm)
        try:
            self.private_key.public_key().verify(
                signature, message, pad, digest_algo(message, signing_algorithm)
            )
            return True
        except InvalidSignature:
            return False

    kms_utils.ECDSAPrivateKey.sign = ecdsa_sign
    kms_utils.ECDSAPrivateKey.verify = ecdsa_verify
    kms_utils.RSAPrivateKey.sign = rsa_sign_p
    kms_utils.RSAPrivateKey.verify = rsa_verify_p

    def read_message(self):
        message = self._get_param("Message")  # KmsResponse._get_param base64-decodes it
        if isinstance(message, str):
            message = message.encode("utf-8")
        if not message:
            raise ValidationException(
                "1 validation error detected: Value at 'Message' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1"
            )
        message_type = self._get_param("MessageType") or "RAW"
        if message_type not in ("RAW", "DIGEST"):
            raise ValidationException(
                f"1 validation error detected: Value '{message_type}' at 'MessageType' "
                "failed to satisfy constraint: Member must satisfy enum value set: "
                "[RAW, DIGEST]"
            )
        if len(message) > 4096:
            raise ValidationException(
                "1 validation error detected: Value at 'Message' failed to satisfy "
                "constraint: Member must have length less than or equal to 4096"
            )
        return message, message_type

    def sign(self):
        key_id = self._get_param("KeyId")
        signing_algorithm = self._get_param("SigningAlgorithm")
        self._validate_key_id(key_id)
        message, message_type = read_message(self)
        _tls.message_type = message_type
        try:
            arn, signature, algo = self.kms_backend.sign(
                key_id=key_id, message=message, signing_algorithm=signing_algorithm
            )
        finally:
            _tls.message_type = "RAW"
        return json.dumps(
            {
                "KeyId": arn,
                "Signature": base64.b64encode(signature).decode("ascii"),
                "SigningAlgorithm": algo,
            }
        )

    def verify(self):
        key_id = self._get_param("KeyId")
        signature = self._get_param("Signature")
        signing_algorithm = self._get_param("SigningAlgorithm")
        self._validate_key_id(key_id)
        message, message_type = read_message(self)
        if isinstance(signature, str):
            signature = base64.b64decode(signature.encode("ascii"))
        if not signature:
            raise ValidationException(
                "1 validation error detected: Value at 'Signature' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1"
            )
        _tls.message_type = message_type
        try:
            arn, valid, algo = self.kms_backend.verify(
                key_id=key_id,
                message=message,
                signature=signature,
                signing_algorithm=signing_algorithm,
            )
        finally:
            _tls.message_type = "RAW"
        if not valid:
            # Real KMS answers an invalid signature with KMSInvalidSignatureException,
            # not SignatureValid=false (moto returns false).
            from moto.core.exceptions import JsonRESTError

            raise JsonRESTError("KMSInvalidSignatureException", "")
        return json.dumps({"KeyId": arn, "SignatureValid": True, "SigningAlgorithm": algo})

    kms_responses.KmsResponse.sign = sign
    kms_responses.KmsResponse.verify = verify


def _patch_kms_get_public_key():
    """Real KMS GetPublicKey answers KeySpec (and the deprecated CustomerMasterKeySpec);
    moto 5.2.5 (KmsResponse.get_public_key) answers only CustomerMasterKeySpec.  Add
    KeySpec.  Always applied (independent of --no-digest-patch)."""
    from moto.kms import responses as kms_responses

    orig = kms_responses.KmsResponse.get_public_key

    def get_public_key(self):
        out = json.loads(orig(self))
        out.setdefault("KeySpec", out.get("CustomerMasterKeySpec"))
        return json.dumps(out)

    kms_responses.KmsResponse.get_public_key = get_public_key


def _patch_secretsmanager_scaling():
    """Performance only, same results: make Secrets Manager usable with 10,000+ secrets.

    moto 5.2.5 moto/secretsmanager/models.py:
    - SecretsStore.__getitem__ / __contains__ / get scan every secret (comparing arn and
      name) on each lookup, so each GetSecretValue / CreateSecret is O(n) and creating
      10,000 secrets is O(n^2) (~23 s in the backend alone).  Here a lookup by name is a
      dict hit (the store is keyed by name), and a lookup by ARN goes through an
      arn -> name cache (rebuilt by one scan on a miss), then moto's partial-ARN rule.
    - SecretsManagerBackend.list_secrets builds to_dict() for every match before cutting
      the page, and batch_get_secret_value(Filters) runs GetSecretValue on every match
      for each page: a 10,000-secret BatchGetSecretValue walk is O(n^2) GetSecretValues.
      Here the page is cut first, then only its entries are rendered / read.  Order,
      NextToken values (moto's offsets), deleted-secret handling and errors are moto's.
    """
    from moto.secretsmanager import models as sm

    store = sm.SecretsStore

    def fast(self, key):
        if not isinstance(key, str):
            return None
        secret = dict.get(self, key)
        if secret is not None and (secret.name == key or secret.arn == key):
            return secret
        if key.startswith("arn:"):
            cache = self.__dict__.setdefault("_arn_cache", {})
            name = cache.get(key)
            secret = dict.get(self, name) if name is not None else None
            if secret is not None and secret.arn == key:
                return secret
            for secret in dict.values(self):
                cache[secret.arn] = secret.name
            name = cache.get(key)
            secret = dict.get(self, name) if name is not None else None
            if secret is not None and secret.arn == key:
                return secret
        return None

    # On a miss, what moto's scan would still find is a partial ARN (name + no suffix):
    # a key that is not an ARN cannot equal one, and names are the dict's keys.
    partial = sm.get_secret_name_from_partial_arn

    def getitem(self, key):
        secret = fast(self, key)
        return secret if secret is not None else dict.__getitem__(self, partial(key))

    def contains(self, key):
        return fast(self, key) is not None or dict.__contains__(self, partial(key))

    def get(self, key):
        secret = fast(self, key)
        return secret if secret is not None else dict.get(self, partial(key))

    store.__getitem__, store.__contains__, store.get = getitem, contains, get

    backend = sm.SecretsManagerBackend

    def page_of(matches, max_results, next_token):
        start = int(next_token or 0)
        end = start + int(max_results or sm.MAX_RESULTS_DEFAULT)
        return matches[start:end], (str(end) if end < len(matches) else None)

    def list_secrets(self, filters, max_results=sm.MAX_RESULTS_DEFAULT, next_token=None,
                     include_planned_deletion=False):
        matches = []
        for secret in self.secrets.values():
            if hasattr(secret, "deleted_date"):
                if secret.deleted_date and not include_planned_deletion:
                    continue
            if sm._matches(secret, filters):
                matches.append(secret)
        page, token = page_of(matches, max_results, next_token)
        return [secret.to_dict() for secret in page], token

    orig_batch = backend.batch_get_secret_value

    def batch_get_secret_value(self, secret_id_list=None, filters=None, max_results=None,
                               next_token=None):
        if secret_id_list or not filters:
            return orig_batch(self, secret_id_list, filters, max_results, next_token)
        matches = [
            s for s in self.secrets.values()
            if isinstance(s, (sm.FakeSecret, sm.ReplicaSecret)) and sm._matches(s, filters)
        ]
        page, token = page_of(matches, max_results, next_token)
        values = []
        for s in page:
            sid = s.secret_id if isinstance(s, sm.FakeSecret) else s.source.secret_id
            values.append(self.get_secret_value(sid, "", ""))
        return values, [], token

    backend.list_secrets = list_secrets
    backend.batch_get_secret_value = batch_get_secret_value


# --------------------------------------------------------------------------------------
# Harness middleware
# --------------------------------------------------------------------------------------

SERVICE_OF_TARGET = {"TrentService": "kms"}


class Harness:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.counts = Counter()
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.failed = 0
        self.outage = {"on": False}
        self.outage_cleared = threading.Event()
        self.outage_cleared.set()
        self.latency = {"ms": 0, "actions": None}

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def action_of(environ):
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target and "." in target:
            prefix, op = target.rsplit(".", 1)
            return f"{SERVICE_OF_TARGET.get(prefix, prefix)}.{op}"
        return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"

    @staticmethod
    def respond(start_response, status, obj, content_type="application/json"):
        body = json.dumps(obj).encode()
        start_response(
            status, [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        )
        return [body]

    @staticmethod
    def read_json(environ):
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        raw = environ["wsgi.input"].read(n) if n else b""
        return json.loads(raw or b"{}")

    def fault(self, environ, start_response, mode):
        ct = "application/x-amz-json-1.1"
        if mode == "reset":
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                import socket

                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            raise ConnectionAbortedError("harness outage: connection reset")
        if mode == "hang":
            self.outage_cleared.wait(float(self.outage.get("hang_max_s", 60)))
            mode = "503"
        if mode == "500":
            return self.respond(
                start_response,
                "500 Internal Server Error",
                {"__type": "InternalFailure", "message": "harness outage (500)"},
                ct,
            )
        if mode == "throttle":
            return self.respond(
                start_response,
                "400 Bad Request",
                {"__type": "ThrottlingException", "message": "Rate exceeded (harness)"},
                ct,
            )
        return self.respond(
            start_response,
            "503 Service Unavailable",
            {"__type": "ServiceUnavailableException", "message": "harness outage (503)"},
            ct,
        )

    # -- harness API -------------------------------------------------------------------
    def stats(self):
        with self.lock:
            return {
                "requests": dict(self.counts),
                "total": self.total,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "failed_by_harness": self.failed,
                "outage": dict(self.outage),
                "latency": dict(self.latency),
            }

    def handle_harness(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/_harness/health":
                return self.respond(start_response, "200 OK", {"ok": True})
            if path == "/_harness/stats" and method == "GET":
                return self.respond(start_response, "200 OK", self.stats())
            if path == "/_harness/stats/reset" and method == "POST":
                with self.lock:
                    self.counts.clear()
                    self.total = 0
                    self.failed = 0
                    self.max_in_flight = self.in_flight
                return self.respond(start_response, "200 OK", self.stats())
            if path == "/_harness/outage" and method == "POST":
                body = self.read_json(environ)
                with self.lock:
                    if body.get("on"):
                        mode = str(body.get("mode", "503"))
                        if mode not in ("503", "500", "throttle", "hang", "reset"):
                            raise ValueError(f"unknown outage mode {mode!r}")
                        self.outage = {
                            "on": True,
                            "mode": mode,
                            "actions": body.get("actions"),
                            "count": body.get("count"),
                            "hang_max_s": float(body.get("hang_max_s", 60)),
                        }
                        self.outage_cleared.clear()
                    else:
                        self.outage = {"on": False}
                        self.outage_cleared.set()
                return self.respond(start_response, "200 OK", self.stats())
            if path == "/_harness/latency" and method == "POST":
                body = self.read_json(environ)
                with self.lock:
                    self.latency = {
                        "ms": float(body.get("ms", 0)),
                        "actions": body.get("actions"),
                    }
                return self.respond(start_response, "200 OK", self.stats())
            if path == "/_harness/bulk-secrets" and method == "POST":
                return self.respond(
                    start_response, "200 OK", bulk_secrets(self.read_json(environ))
                )
        except Exception as e:  # noqa: BLE001 - report to the test, keep serving
            return self.respond(
                start_response, "400 Bad Request", {"error": f"{type(e).__name__}: {e}"}
            )
        return self.respond(start_response, "404 Not Found", {"error": "no such endpoint"})

    # -- WSGI --------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_harness/"):
            return self.handle_harness(environ, start_response)
        action = self.action_of(environ)
        fail_mode = None
        with self.lock:
            self.counts[action] += 1
            self.total += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            o = self.outage
            if o.get("on") and (not o.get("actions") or action in o["actions"]):
                fail_mode = o["mode"]
                self.failed += 1
                if o.get("count") is not None:
                    o["count"] -= 1
                    if o["count"] <= 0:
                        self.outage = {"on": False}
                        self.outage_cleared.set()
            lat = self.latency
            delay = lat["ms"] / 1000.0 if (
                lat["ms"] and (not lat.get("actions") or action in lat["actions"])
            ) else 0.0
        try:
            if fail_mode is not None:
                return self.fault(environ, start_response, fail_mode)
            if delay:
                time.sleep(delay)
            # Materialise the body here so in_flight covers moto's whole handling.
            return list(self.app(environ, start_response))
        finally:
            with self.lock:
                self.in_flight -= 1


def bulk_secrets(body):
    from moto.secretsmanager.models import secretsmanager_backends

    t0 = time.monotonic()
    region = body.get("region", "us-east-1")
    account = body.get("account_id", ACCOUNT_ID)
    values = body.get("values") or []
    prefix = body.get("prefix", "")
    start = int(body.get("start", 0))
    names = body.get("names") or [f"{prefix}{start + i:06d}" for i in range(len(values))]
    if len(names) != len(values):
        raise ValueError("names and values differ in length")
    tags = [{"Key": k, "Value": v} for k, v in (body.get("tags") or {}).items()]
    backend = secretsmanager_backends[account][region]
    for name, value in zip(names, values):
        if not isinstance(value, str):
            value = json.dumps(value)
        if name in backend.secrets:
            backend.put_secret_value(name, value, None, None, None)
            continue
        backend.create_secret(
            name=name,
            secret_string=value,
            secret_binary=None,
            description=None,
            tags=list(tags) if tags else None,
            kms_key_id=None,
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
    return {
        "created": len(names),
        "first": names[0] if names else None,
        "last": names[-1] if names else None,
        "elapsed_s": round(time.monotonic() - t0, 4),
    }


# --------------------------------------------------------------------------------------
# --tls-dir: throw-away CA + server certificate
# --------------------------------------------------------------------------------------


def make_test_pki(tls_dir):
    """Write DIR/ca.pem, DIR/server.pem (leaf + CA), DIR/server.key; return their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(tls_dir, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=1)

    def name(cn):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "palisade tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_name = name("palisade moto_server.py throw-away test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    paths = {
        "ca": os.path.abspath(os.path.join(tls_dir, "ca.pem")),
        "cert": os.path.abspath(os.path.join(tls_dir, "server.pem")),
        "key": os.path.abspath(os.path.join(tls_dir, "server.key")),
    }
    with open(paths["ca"], "wb") as f:
        f.write(ca_cert.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


def enable_tls(server, paths):
    """Serve HTTPS on a werkzeug server made without ssl_context.

    werkzeug's own ssl_context wraps the listening socket, so each handshake runs in the
    accept loop (one stalled client blocks every new connection).  Here the accepted
    socket is wrapped in its connection thread instead; server.ssl_context is set so
    werkzeug reports wsgi.url_scheme=https and treats TLS errors as client errors."""
    import socket
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(paths["cert"], paths["key"])
    server.ssl_context = ctx
    plain_finish = server.finish_request

    def finish_request(request, client_address):
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(30)  # handshake only
            tls = ctx.wrap_socket(request, server_side=True)  # detaches `request`
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return  # bad / aborted handshake: shutdown_request closes the raw socket
        try:
            plain_finish(tls, client_address)
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()

    server.finish_request = finish_request


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = ephemeral (default)")
    ap.add_argument(
        "--no-digest-patch",
        action="store_true",
        help="serve stock moto KMS Sign/Verify (hashes a DIGEST again)",
    )
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    ap.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="also stop when stdin closes (spawn with a piped stdin: no orphan if the "
        "test process dies)",
    )
    ap.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="serve HTTPS with a throw-away test CA; writes DIR/ca.pem (+ server.pem, "
        "server.key) and adds \"ca\" to the ready line",
    )
    args = ap.parse_args()

    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    _patch_kms_get_public_key()
    _patch_secretsmanager_scaling()
    if not args.no_digest_patch:
        _patch_kms_sign_verify()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class Handler(MotoRequestHandler):
        def log_request(self, *a, **kw):  # werkzeug logs every request otherwise
            if args.verbose:
                super().log_request(*a, **kw)

    app = Harness(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=Handler)
    server.daemon_threads = True
    port = server.server_port
    ready = {
        "ready": True,
        "port": port,
        "endpoint": f"http://{args.host}:{port}",
        "digest_patch": not args.no_digest_patch,
    }
    if args.tls_dir:
        paths = make_test_pki(args.tls_dir)
        enable_tls(server, paths)
        ready["endpoint"] = f"https://{args.host}:{port}"
        ready["ca"] = paths["ca"]

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(json.dumps(ready), flush=True)
    if args.exit_on_stdin_eof:

        def watch_stdin():
            # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts
            # the interpreter at exit ("could not acquire lock for <stdin>").
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(1.0):
        pass
    app.outage_cleared.set()  # release hung requests
    server.shutdown()
    thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
