#!/usr/bin/env python3
"""Azure Key Vault + Microsoft Entra stand-in for tests (stdlib + `cryptography`).

Usage:
    python azure_standin.py --dir DIR [--port N] [--tenant T] [--client-id C]
                            [--client-secret-file F] [--identity-header H] [--log]

Starts an HTTPS server on 127.0.0.1 with a throw-away CA (written to DIR/ca.pem)
and prints one JSON ready line on stdout:
    {"ready":true,"port":P,"ca":"DIR/ca.pem","vault_url":"https://127.0.0.1:P",
     "authority":"https://127.0.0.1:P","tenant":T,"client_id":C,
     "client_cert_pfx":"DIR/client-cert.pfx","client_cert_pfx_nopass":"DIR/client-cert-nopass.pfx",
     "client_cert_pem":"DIR/client-cert.pem","client_cert_password":"standin-pfx"}
The client certificate (RSA-2048, self-signed, CN = client id) is registered as a credential
of the client id: the token endpoint accepts a client_assertion JWT signed with it.
Secrets and tokens are never printed. See README.md ("Azure Key Vault stand-in").
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets as pysecrets
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, decode_dss_signature, encode_dss_signature)
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

API_VERSIONS = ("7.4", "7.5")
VAULT_RESOURCE = "https://vault.azure.net"
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_PAGE = 25
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PFX_PASSWORD = "standin-pfx"
NBF_SKEW_S = 300  # Entra tolerates ~5 minutes of clock skew on nbf

CURVES = {
    # crv -> (cryptography curve, alg, order n, coordinate size)
    "P-256": (ec.SECP256R1(), "ES256",
              0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 32),
    "P-256K": (ec.SECP256K1(), "ES256K",
               0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141, 32),
}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_dec(s: str) -> bytes:
    s = s.strip()
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class KVError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


# --------------------------------------------------------------------------- TLS

def make_tls(dirpath):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "palisade azure stand-in test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(srv_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    os.makedirs(dirpath, exist_ok=True)
    ca_path = os.path.join(dirpath, "ca.pem")
    cert_path = os.path.join(dirpath, "server.pem")
    key_path = os.path.join(dirpath, "server-key.pem")
    with open(ca_path, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(cert_path, "wb") as f:
        f.write(srv_cert.public_bytes(serialization.Encoding.PEM))
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(srv_key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ca_path, ctx


def b64_any_dec(s):
    """Decode standard or url-safe base64, padding optional (x5t / x5t#S256 thumbprints)."""
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", s):
        raise ValueError("not base64")
    t = s.rstrip("=").replace("-", "+").replace("_", "/")
    return base64.b64decode(t + "=" * (-len(t) % 4), validate=True)


def make_client_cert(dirpath, client_id):
    """RSA-2048 self-signed client certificate (CN = client id, 1 day) in PFX and PEM forms."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    label = client_id.encode()[:64] or b"client"
    files = {
        "client_cert_pfx": ("client-cert.pfx", pkcs12.serialize_key_and_certificates(
            label, key, cert, None,
            serialization.BestAvailableEncryption(PFX_PASSWORD.encode()))),
        "client_cert_pfx_nopass": ("client-cert-nopass.pfx", pkcs12.serialize_key_and_certificates(
            label, key, cert, None, serialization.NoEncryption())),
        "client_cert_pem": ("client-cert.pem", cert.public_bytes(serialization.Encoding.PEM)
                            + key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())),
    }
    paths = {}
    for field, (fname, data) in files.items():
        path = os.path.abspath(os.path.join(dirpath, fname))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        paths[field] = path
    der = cert.public_bytes(serialization.Encoding.DER)
    registered = {"public_key": key.public_key(),
                  "sha1": hashlib.sha1(der).digest(),  # nosec - x5t is SHA-1 by definition
                  "sha256": hashlib.sha256(der).digest()}
    return paths, registered


# ------------------------------------------------------------------------- state

class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.tenant = args.tenant
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.identity_header = args.identity_header
        self.client_certs = []  # registered certificates of client_id (see make_client_cert)
        self.vault_url = ""  # set once the port is known
        self.tokens = {}  # token -> (expiry epoch, resource)
        self.keys = {}  # name -> {"versions": {ver: rec}, "order": [ver...]}
        self.key_names = []  # insertion order, for paging
        self.secrets = {}  # name -> {"versions": {ver: bundle}, "order": [ver...]}
        self.secret_names = []
        self.outage = False
        self.outage_mode = "503"
        self.outage_cleared = threading.Event()
        self.outage_cleared.set()
        self.s_mode = "raw"
        self.latency_ms = 0
        self.stats = {}
        self.status_counts = {}
        self.inflight = 0
        self.max_inflight = 0
        self.total = 0

    def count(self, route):
        with self.lock:
            self.stats[route] = self.stats.get(route, 0) + 1
            self.total += 1

    def count_status(self, status):
        with self.lock:
            k = str(status)
            self.status_counts[k] = self.status_counts.get(k, 0) + 1

    def issue_token(self, resource, lifetime=3600):
        tok = pysecrets.token_urlsafe(32)
        exp = int(time.time()) + lifetime
        with self.lock:
            self.tokens[tok] = (exp, resource)
        return tok, exp

    def token_ok(self, tok):
        with self.lock:
            ent = self.tokens.get(tok)
        return bool(ent) and ent[0] > time.time() and ent[1].rstrip("/") == VAULT_RESOURCE


def now_attrs(extra=None):
    t = int(time.time())
    a = {"enabled": True, "created": t, "updated": t,
         "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
    if extra:
        a.update(extra)
    return a


def clean_attrs(req_attrs):
    out = {}
    for k in ("enabled", "nbf", "exp"):
        if isinstance(req_attrs, dict) and k in req_attrs and req_attrs[k] is not None:
            out[k] = req_attrs[k]
    return out


def page_params(query):
    mr = query.get("maxresults", [None])[0]
    if mr is None or mr == "":
        size = MAX_PAGE
    else:
        try:
            size = int(mr)
        except ValueError:
            raise KVError(400, "BadParameter", "maxresults must be an integer")
        if size < 1 or size > MAX_PAGE:
            raise KVError(400, "BadParameter",
                          "Invalid maxresults value %s: must be between 1 and %d" % (mr, MAX_PAGE))
    tok = query.get("$skiptoken", [None])[0]
    start = 0
    if tok:
        try:
            start = int(b64u_dec(tok).decode().split(":", 1)[1])
        except Exception:
            raise KVError(400, "BadParameter", "Invalid $skiptoken")
    return size, start


# ----------------------------------------------------------------------- handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "palisade-azure-standin"
    sys_version = ""

    # -- plumbing
    @property
    def st(self) -> State:
        return self.server.state

    def log_message(self, fmt, *args):  # replaced by our own access log
        pass

    def _send(self, status, obj=None, headers=None, raw=None, ctype="application/json; charset=utf-8"):
        body = raw if raw is not None else (b"" if obj is None else json.dumps(obj).encode())
        self.send_response(status)
        if body or obj is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._status = status

    def _kv_error(self, e: KVError):
        self._send(e.status, {"error": {"code": e.code, "message": e.message}}, headers=e.headers)

    def _challenge(self, message):
        hdr = 'Bearer authorization="%s/%s", resource="%s"' % (
            self.st.vault_url, self.st.tenant, VAULT_RESOURCE)
        raise KVError(401, "Unauthorized", message, {"WWW-Authenticate": hdr})

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        t0 = time.time()
        self._status = 0
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n > 0 else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        # collapse duplicate slashes (SDK may produce /keys/name//sign for version-less ids)
        path = re.sub(r"/+", "/", path)
        if len(path) > 1:
            path = path.rstrip("/")
        self.query = parse_qs(parts.query, keep_blank_values=True)
        segs = [s for s in path.split("/") if s]
        dataplane = bool(segs) and segs[0] in ("keys", "secrets")
        if dataplane:
            with self.st.lock:
                self.st.inflight += 1
                self.st.max_inflight = max(self.st.max_inflight, self.st.inflight)
        try:
            if segs and segs[0] == "_standin":
                self._hooks(segs)
            else:
                if self.st.outage:
                    self.st.count("OUTAGE")
                    if self.st.outage_mode == "hang":
                        while self.st.outage and not self.server.stopping:
                            self.st.outage_cleared.wait(0.5)
                    if self.st.outage:
                        raise KVError(503, "ServiceUnavailable",
                                      "The service is temporarily unavailable (stand-in outage).")
                if dataplane and self.st.latency_ms > 0:
                    time.sleep(self.st.latency_ms / 1000.0)
                self._route(segs)
        except KVError as e:
            self._kv_error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - defensive
            try:
                self._send(500, {"error": {"code": "InternalError", "message": type(e).__name__}})
            except Exception:
                self.close_connection = True
        finally:
            if dataplane:
                with self.st.lock:
                    self.st.inflight -= 1
            self.st.count_status(self._status)
            if self.server.access_log:
                sys.stderr.write("%s %s %s %d %.1fms\n" % (
                    self.address_string(), self.command, parts.path, self._status,
                    (time.time() - t0) * 1000))
                sys.stderr.flush()

    def _json_body(self):
        if not self.body:
            return {}
        try:
            obj = json.loads(self.body)
        except ValueError:
            raise KVError(400, "BadParameter", "The request body is not valid JSON.")
        if not isinstance(obj, dict):
            raise KVError(400, "BadParameter", "The request body must be a JSON object.")
        return obj

    # -- routing
    def _route(self, segs):
        m = self.command
        if len(segs) >= 3 and segs[1] == "oauth2" and segs[2] == "v2.0" and segs[3:] == ["token"] and m == "POST":
            self.st.count("POST /{tenant}/oauth2/v2.0/token")
            return self._entra_token(segs[0])
        if len(segs) == 4 and segs[1:] == ["v2.0", ".well-known", "openid-configuration"] and m == "GET":
            self.st.count("GET /{tenant}/v2.0/.well-known/openid-configuration")
            return self._openid(segs[0])
        if segs == ["msi", "token"] and m == "GET":
            self.st.count("GET /msi/token")
            return self._msi_appservice()
        if segs == ["metadata", "identity", "oauth2", "token"] and m == "GET":
            self.st.count("GET /metadata/identity/oauth2/token")
            return self._msi_imds()
        if segs and segs[0] in ("keys", "secrets"):
            return self._vault(segs)
        self.st.count("UNKNOWN")
        raise KVError(404, "NotFound", "No such route in the stand-in.")

    # -- Entra
    def _aad_error(self, status, error, code, desc):
        self._send(status, {
            "error": error,
            "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s" % (
                code, desc, uuid.uuid4(), uuid.uuid4(),
                datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")),
            "error_codes": [code],
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        })

    def _openid(self, tenant):
        if tenant != self.st.tenant:
            return self._aad_error(400, "invalid_tenant", 90002, "Tenant '%s' not found." % tenant)
        base = self.st.vault_url + "/" + tenant
        self._send(200, {
            "token_endpoint": base + "/oauth2/v2.0/token",
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "issuer": base + "/v2.0",
            "jwks_uri": base + "/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
        })

    def _entra_token(self, tenant):
        if tenant != self.st.tenant:
            return self._aad_error(400, "invalid_request", 90002, "Tenant '%s' not found." % tenant)
        form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        g = lambda k: form.get(k, [""])[0]
        if g("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        client_id, client_secret = g("client_id"), g("client_secret")
        assertion_type, assertion = g("client_assertion_type"), g("client_assertion")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):  # client_secret_basic
            try:
                client_id, client_secret = base64.b64decode(auth[6:]).decode().split(":", 1)
            except Exception:
                pass
        if assertion_type or assertion:
            if client_secret:
                return self._aad_error(400, "invalid_request", 90023,
                                       "Only one client credential may be presented: client_secret "
                                       "or client_assertion, not both.")
            if assertion_type != JWT_BEARER:
                return self._aad_error(400, "invalid_request", 700022,
                                       "The provided value for the input parameter "
                                       "'client_assertion_type' is not valid. Expected '%s'." % JWT_BEARER)
            if not client_id:  # optional with an assertion: Entra takes it from the JWT
                try:
                    client_id = str(json.loads(b64u_dec(assertion.split(".")[1])).get("iss", ""))
                except Exception:
                    client_id = ""
        if client_id != self.st.client_id:
            return self._aad_error(401, "unauthorized_client", 700016,
                                   "Application with identifier '%s' was not found in the directory."
                                   % client_id[:64])
        if assertion_type:
            err = self._check_assertion(tenant, client_id, assertion)
            if err:
                return self._aad_error(401, *err)
        elif not client_secret or not pysecrets.compare_digest(client_secret.encode(),
                                                               self.st.client_secret.encode()):
            return self._aad_error(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent in "
                                   "the request is the client secret value, not the client secret ID.")
        scope = g("scope")
        scopes = scope.split()
        resource = None
        for s in scopes:
            if s.endswith("/.default"):
                resource = s[: -len("/.default")]
        if resource is None or resource.rstrip("/") != VAULT_RESOURCE:
            return self._aad_error(400, "invalid_scope", 1002012,
                                   "The provided value for scope %s is not valid." % scope[:100])
        tok, _ = self.st.issue_token(resource)
        self._send(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                         "access_token": tok}, headers={"Cache-Control": "no-store"})

    def _check_assertion(self, tenant, client_id, assertion):
        """Validate a private_key_jwt client assertion (RFC 7523) as Entra does.

        Returns None when valid, else (error, AADSTS code, description)."""
        bad_sig = ("invalid_client", 700027,
                   "Client assertion contains an invalid signature. [Reason - The key was not found., "
                   "Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph "
                   "Explorer or directly use MS Graph to see configured keys for app Id '%s'.]")
        malformed = ("invalid_client", 50027, "JWT token is invalid or malformed.")
        parts = assertion.split(".")
        if len(parts) != 3:
            return malformed
        try:
            header = json.loads(b64u_dec(parts[0]))
            claims = json.loads(b64u_dec(parts[1]))
            sig = b64u_dec(parts[2])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return malformed
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return malformed
        if header.get("alg") != "RS256":
            return ("invalid_client", 5002738,
                    "Invalid JWT token. '%s' is not a supported signature algorithm. Supported "
                    "signing algorithms are: 'RS256'." % str(header.get("alg"))[:20])
        # thumbprint -> registered certificate (x5t#S256 takes precedence over x5t)
        if "x5t#S256" in header:
            field, hname = "sha256", "x5t#S256"
        elif "x5t" in header:
            field, hname = "sha1", "x5t"
        else:
            return bad_sig[:2] + (bad_sig[2] % ("", client_id),)
        try:
            thumb = b64_any_dec(header[hname])
        except (ValueError, binascii.Error):
            return bad_sig[:2] + (bad_sig[2] % (str(header[hname])[:64], client_id),)
        cert = None
        for c in self.st.client_certs:
            if pysecrets.compare_digest(thumb, c[field]):
                cert = c
        shown = thumb.hex().upper()
        if cert is None:
            return bad_sig[:2] + (bad_sig[2] % (shown, client_id),)
        try:
            cert["public_key"].verify(sig, (parts[0] + "." + parts[1]).encode("ascii"),
                                      padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return ("invalid_client", 700027,
                    "Client assertion contains an invalid signature. [Reason - The provided "
                    "signature value did not match the expected signature value., Thumbprint of key "
                    "used by client: '%s']" % shown)
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            return ("invalid_client", 700021,
                    "Client assertion application identifier doesn't match 'client_id' parameter "
                    "(iss and sub must both be the client id).")
        endpoint = "%s/%s/oauth2/v2.0/token" % (self.st.vault_url, tenant)
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if endpoint not in auds:
            return ("invalid_client", 50013,
                    "Assertion failed signature validation. [Reason - The audience of the assertion "
                    "'%s' does not match the expected audience '%s'.]" % (str(aud)[:200], endpoint))
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)) or \
                (nbf is not None and (isinstance(nbf, bool) or not isinstance(nbf, (int, float)))):
            return malformed
        if exp <= now:
            return ("invalid_client", 700024,
                    "Client assertion is not within its valid time range. Current time: %s, "
                    "assertion valid to: %s." % (
                        datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(),
                        datetime.datetime.fromtimestamp(exp, datetime.timezone.utc).isoformat()))
        if nbf is not None and nbf > now + NBF_SKEW_S:
            return ("invalid_client", 700024,
                    "Client assertion is not within its valid time range. Current time: %s, "
                    "assertion valid from: %s." % (
                        datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(),
                        datetime.datetime.fromtimestamp(nbf, datetime.timezone.utc).isoformat()))
        return None

    def _msi_resource(self):
        res = self.query.get("resource", [""])[0]
        if res.endswith("/.default"):
            res = res[: -len("/.default")]
        return res

    def _msi_appservice(self):
        hdr = self.headers.get("X-IDENTITY-HEADER")
        if not hdr or not pysecrets.compare_digest(hdr.encode(), self.st.identity_header.encode()):
            return self._send(401, {"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER missing or wrong"})
        if self.query.get("api-version", [""])[0] != "2019-08-01":
            return self._send(400, {"statusCode": 400, "message": "Unsupported api-version"})
        res = self._msi_resource()
        if res.rstrip("/") != VAULT_RESOURCE:
            return self._send(500, {"statusCode": 500, "message": "An unexpected error occured while fetching the AAD Token."})
        tok, exp = self.st.issue_token(res)
        self._send(200, {"access_token": tok, "expires_on": str(exp), "resource": res,
                         "token_type": "Bearer", "client_id": self.st.client_id})

    def _msi_imds(self):
        if self.headers.get("Metadata", "").lower() != "true":
            return self._send(400, {"error": "invalid_request",
                                    "error_description": "Required metadata header not specified"})
        if self.query.get("api-version", [""])[0] != "2018-02-01":
            return self._send(400, {"error": "invalid_request",
                                    "error_description": "Unsupported api-version"})
        res = self._msi_resource()
        if res.rstrip("/") != VAULT_RESOURCE:
            return self._send(400, {"error": "invalid_resource",
                                    "error_description": "AADSTS500011: The resource principal named %s was not found." % res[:100]})
        tok, exp = self.st.issue_token(res)
        now = int(time.time())
        self._send(200, {"access_token": tok, "client_id": self.st.client_id,
                         "expires_in": str(exp - now), "expires_on": str(exp),
                         "ext_expires_in": str(exp - now), "not_before": str(now),
                         "resource": res, "token_type": "Bearer"})

    # -- Key Vault data plane
    def _vault(self, segs):
        m = self.command
        kind = segs[0]
        # route template for stats
        if kind == "keys":
            if len(segs) == 1:
                route = "GET /keys"
            elif len(segs) == 2:
                route = "GET /keys/{name}"
            elif len(segs) == 3 and segs[2] in ("create", "sign", "verify", "versions"):
                route = "%s /keys/{name}/%s" % (m, segs[2])
            elif len(segs) == 3:
                route = "GET /keys/{name}/{version}"
            else:
                route = "%s /keys/{name}/{version}/%s" % (m, segs[3])
        else:
            if len(segs) == 1:
                route = "GET /secrets"
            elif len(segs) == 2:
                route = "%s /secrets/{name}" % m
            elif segs[2] == "versions":
                route = "GET /secrets/{name}/versions"
            else:
                route = "GET /secrets/{name}/{version}"
        self.st.count(route)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            self._challenge("AKV10000: Request is missing a Bearer or PoP token.")
        if not self.st.token_ok(auth[7:].strip()):
            self._challenge("AKV10022: Invalid audience or expired/unknown token.")
        api = self.query.get("api-version", [None])[0]
        if api is None:
            raise KVError(400, "BadParameter", "The 'api-version' query parameter is required.")
        if api not in API_VERSIONS:
            raise KVError(400, "BadParameter",
                          "The specified version (%s) is not recognized. Consider using the latest "
                          "supported version (%s)." % (api, API_VERSIONS[-1]))
        self.api = api
        if len(segs) >= 2 and not NAME_RE.match(segs[1]):
            raise KVError(400, "BadParameter", "Invalid name: must match ^[0-9a-zA-Z-]{1,127}$")
        if kind == "keys":
            return self._keys(segs, m)
        return self._secrets(segs, m)

    def _next_link(self, path, start, size, total):
        if start + size >= total:
            return None
        tok = b64u(("offset:%d" % (start + size)).encode())
        return "%s%s?api-version=%s&$skiptoken=%s&maxresults=%d" % (
            self.st.vault_url, path, self.api, tok, size)

    # keys
    def _key_bundle(self, name, ver, rec):
        pub = rec["priv"].public_key().public_numbers()
        size = CURVES[rec["crv"]][3]
        return {
            "key": {"kid": "%s/keys/%s/%s" % (self.st.vault_url, name, ver), "kty": rec["kty"],
                    "key_ops": rec["key_ops"], "crv": rec["crv"],
                    "x": b64u(pub.x.to_bytes(size, "big")), "y": b64u(pub.y.to_bytes(size, "big"))},
            "attributes": dict(rec["attributes"]),
            **({"tags": rec["tags"]} if rec["tags"] else {}),
        }

    def _get_key(self, name, ver=None):
        with self.st.lock:
            k = self.st.keys.get(name)
            if k and not ver:
                ver = k["order"][-1]
            rec = k["versions"].get(ver) if k else None
        if rec is None:
            raise KVError(404, "KeyNotFound",
                          "A key with (name/id) %s%s was not found in this key vault. If you recently "
                          "deleted this key you may be able to recover it using the correct recovery "
                          "command. For help resolving this issue, please see "
                          "https://go.microsoft.com/fwlink/?linkid=2125182"
                          % (name, "/" + ver if ver and k else ""))
        return ver, rec

    def _keys(self, segs, m):
        if len(segs) == 1 and m == "GET":
            size, start = page_params(self.query)
            with self.st.lock:
                names = self.st.key_names[start:start + size]
                total = len(self.st.key_names)
                items = []
                for n in names:
                    k = self.st.keys[n]
                    rec = k["versions"][k["order"][-1]]
                    it = {"kid": "%s/keys/%s" % (self.st.vault_url, n),
                          "attributes": dict(rec["attributes"])}
                    if rec["tags"]:
                        it["tags"] = rec["tags"]
                    items.append(it)
            return self._send(200, {"value": items,
                                    "nextLink": self._next_link("/keys", start, size, total)})
        name = segs[1]
        if len(segs) == 3 and segs[2] == "create" and m == "POST":
            body = self._json_body()
            kty = body.get("kty")
            if kty not in ("EC", "EC-HSM"):
                raise KVError(400, "BadParameter",
                              "Key type %r is not supported by the stand-in (EC, EC-HSM only)." % kty)
            crv = body.get("crv") or "P-256"
            if crv not in CURVES:
                raise KVError(400, "BadParameter", "Unsupported curve %r (P-256, P-256K only)." % crv)
            ops = body.get("key_ops") or ["sign", "verify"]
            tags = body.get("tags") or {}
            priv = ec.generate_private_key(CURVES[crv][0])
            ver = uuid.uuid4().hex
            attrs = now_attrs({"exportable": False})
            attrs.update(clean_attrs(body.get("attributes")))
            rec = {"kty": kty, "crv": crv, "priv": priv, "key_ops": ops, "tags": tags,
                   "attributes": attrs}
            with self.st.lock:
                k = self.st.keys.get(name)
                if k is None:
                    k = self.st.keys[name] = {"versions": {}, "order": []}
                    self.st.key_names.append(name)
                k["versions"][ver] = rec
                k["order"].append(ver)
            return self._send(200, self._key_bundle(name, ver, rec))
        if len(segs) == 3 and segs[2] == "versions" and m == "GET":
            size, start = page_params(self.query)
            with self.st.lock:
                k = self.st.keys.get(name)
                order = list(k["order"]) if k else None
            if order is None:
                self._get_key(name)
            items = []
            for v in order[start:start + size]:
                rec = k["versions"][v]
                items.append({"kid": "%s/keys/%s/%s" % (self.st.vault_url, name, v),
                              "attributes": dict(rec["attributes"]),
                              **({"tags": rec["tags"]} if rec["tags"] else {})})
            return self._send(200, {"value": items, "nextLink": self._next_link(
                "/keys/%s/versions" % name, start, size, len(order))})
        if len(segs) in (2, 3) and m == "GET":
            ver, rec = self._get_key(name, segs[2] if len(segs) == 3 else None)
            return self._send(200, self._key_bundle(name, ver, rec))
        if len(segs) in (3, 4) and m == "POST" and segs[-1] in ("sign", "verify"):
            ver, rec = self._get_key(name, segs[2] if len(segs) == 4 else None)
            body = self._json_body()
            alg = body.get("alg")
            want = CURVES[rec["crv"]][1]
            if alg not in ("ES256", "ES256K", "ES384", "ES512", "RS256", "PS256"):
                raise KVError(400, "BadParameter", "Invalid algorithm %r." % alg)
            if alg != want:
                raise KVError(400, "BadParameter",
                              "Key and signing algorithm are incompatible: key curve %s requires %s, got %s."
                              % (rec["crv"], want, alg))
            if segs[-1] not in rec["key_ops"]:
                raise KVError(403, "Forbidden", "Operation %s is not permitted on this key." % segs[-1])
            if not rec["attributes"].get("enabled", True):
                raise KVError(403, "Forbidden", "Operation is not allowed on a disabled key.")
            try:
                digest = b64u_dec(body.get("value") or "")
            except Exception:
                raise KVError(400, "BadParameter", "value is not valid base64url.")
            if len(digest) != 32:
                raise KVError(400, "BadParameter",
                              "Invalid digest length %d for %s: expected 32 bytes." % (len(digest), alg))
            kid = "%s/keys/%s/%s" % (self.st.vault_url, name, ver)
            n = CURVES[rec["crv"]][2]
            if segs[-1] == "sign":
                der = rec["priv"].sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
                r, s = decode_dss_signature(der)
                mode = self.st.s_mode
                if mode == "low" and s > n // 2:
                    s = n - s
                elif mode == "high" and s <= n // 2:
                    s = n - s
                # mode "raw": OpenSSL's s is uniform, so high-S occurs ~50% (like real Key Vault)
                return self._send(200, {"kid": kid, "value": b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))})
            try:
                sig = b64u_dec(body.get("signature") or "")
            except Exception:
                raise KVError(400, "BadParameter", "signature is not valid base64url.")
            ok = False
            if len(sig) == 64:
                try:
                    rec["priv"].public_key().verify(
                        encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                        digest, ec.ECDSA(Prehashed(hashes.SHA256())))
                    ok = True
                except Exception:
                    ok = False
            return self._send(200, {"value": ok})
        raise KVError(405 if m not in ("GET", "POST") else 400, "BadParameter",
                      "Unsupported operation %s %s" % (m, "/".join(segs)))

    # secrets
    def _secret_id(self, name, ver=None):
        return "%s/secrets/%s%s" % (self.st.vault_url, name, "/" + ver if ver else "")

    def _secret_item(self, name, ver, b, with_version):
        it = {"id": self._secret_id(name, ver if with_version else None),
              "attributes": dict(b["attributes"])}
        if b.get("tags"):
            it["tags"] = b["tags"]
        if b.get("contentType") is not None:
            it["contentType"] = b["contentType"]
        return it

    def _secret_bundle(self, name, ver, b):
        out = {"value": b["value"], "id": self._secret_id(name, ver),
               "attributes": dict(b["attributes"])}
        if b.get("tags"):
            out["tags"] = b["tags"]
        if b.get("contentType") is not None:
            out["contentType"] = b["contentType"]
        return out

    def _not_found_secret(self, name, ver):
        raise KVError(404, "SecretNotFound",
                      "A secret with (name/id) %s%s was not found in this key vault. If you recently "
                      "deleted this secret you may be able to recover it using the correct recovery "
                      "command. For help resolving this issue, please see "
                      "https://go.microsoft.com/fwlink/?linkid=2125182" % (name, "/" + ver if ver else ""))

    def _secrets(self, segs, m):
        st = self.st
        if len(segs) == 1 and m == "GET":
            size, start = page_params(self.query)
            with st.lock:
                names = st.secret_names[start:start + size]
                total = len(st.secret_names)
                items = []
                for n in names:
                    s = st.secrets[n]
                    v = s["order"][-1]
                    items.append(self._secret_item(n, v, s["versions"][v], False))
            return self._send(200, {"value": items,
                                    "nextLink": self._next_link("/secrets", start, size, total)})
        name = segs[1]
        if len(segs) == 2 and m == "PUT":
            body = self._json_body()
            value = body.get("value")
            if not isinstance(value, str):
                raise KVError(400, "BadParameter", "Property 'value' is required and must be a string.")
            tags = body.get("tags") or {}
            if not isinstance(tags, dict) or len(tags) > 15:
                raise KVError(400, "BadParameter", "tags must be an object with at most 15 entries.")
            attrs = now_attrs()
            attrs.update(clean_attrs(body.get("attributes")))
            b = {"value": value, "tags": tags, "contentType": body.get("contentType"), "attributes": attrs}
            ver = uuid.uuid4().hex
            with st.lock:
                s = st.secrets.get(name)
                if s is None:
                    s = st.secrets[name] = {"versions": {}, "order": []}
                    st.secret_names.append(name)
                s["versions"][ver] = b
                s["order"].append(ver)
            return self._send(200, self._secret_bundle(name, ver, b))
        if len(segs) == 3 and segs[2] == "versions" and m == "GET":
            size, start = page_params(self.query)
            with st.lock:
                s = st.secrets.get(name)
                if s is None:
                    self._not_found_secret(name, None)
                order = s["order"]
                items = [self._secret_item(name, v, s["versions"][v], True)
                         for v in order[start:start + size]]
                total = len(order)
            return self._send(200, {"value": items, "nextLink": self._next_link(
                "/secrets/%s/versions" % name, start, size, total)})
        if len(segs) in (2, 3) and m == "GET":
            ver = segs[2] if len(segs) == 3 else None
            with st.lock:
                s = st.secrets.get(name)
                b = None
                if s is not None:
                    ver = ver or s["order"][-1]
                    b = s["versions"].get(ver)
            if b is None:
                self._not_found_secret(name, segs[2] if len(segs) == 3 else None)
            if not b["attributes"].get("enabled", True):
                raise KVError(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
            return self._send(200, self._secret_bundle(name, ver, b))
        raise KVError(405 if m not in ("GET", "PUT") else 400, "BadParameter",
                      "Unsupported operation %s %s" % (m, "/".join(segs)))

    # -- test hooks
    def _hooks(self, segs):
        st = self.st
        m = self.command
        if segs == ["_standin", "outage"] and m == "POST":
            body = self._json_body()
            on = bool(body.get("on"))
            with st.lock:
                st.outage_mode = "hang" if body.get("mode") == "hang" else "503"
                st.outage = on
                if on:
                    st.outage_cleared.clear()
                else:
                    st.outage_cleared.set()
            return self._send(200, {"outage": on, "mode": st.outage_mode})
        if segs == ["_standin", "stats"] and m == "GET":
            with st.lock:
                return self._send(200, {
                    "routes": dict(st.stats), "status": dict(st.status_counts), "total": st.total,
                    "inflight": st.inflight, "max_inflight": st.max_inflight,
                    "keys": len(st.keys), "secrets": len(st.secrets),
                    "tokens_issued": len(st.tokens), "outage": st.outage, "s_mode": st.s_mode,
                    "latency_ms": st.latency_ms})
        if segs == ["_standin", "stats", "reset"] and m == "POST":
            with st.lock:
                st.stats.clear()
                st.status_counts.clear()
                st.total = 0
                st.max_inflight = st.inflight
            return self._send(200, {"reset": True})
        if segs == ["_standin", "latency"] and m == "POST":
            ms = self._json_body().get("ms", 0)
            if not isinstance(ms, (int, float)) or ms < 0:
                raise KVError(400, "BadParameter", "ms must be a non-negative number")
            st.latency_ms = ms
            return self._send(200, {"latency_ms": ms})
        if segs == ["_standin", "s-mode"] and m == "POST":
            mode = self._json_body().get("mode")
            if mode not in ("raw", "low", "high"):
                raise KVError(400, "BadParameter", "mode must be raw, low or high")
            st.s_mode = mode
            return self._send(200, {"s_mode": mode})
        if segs == ["_standin", "bulk-secrets"] and m == "POST":
            body = self._json_body()
            values = body.get("values") or []
            names = body.get("names")
            prefix = body.get("prefix", "")
            start = int(body.get("start", 0))
            tags = body.get("tags") or {}
            ctype = body.get("contentType")
            if names is not None and len(names) != len(values):
                raise KVError(400, "BadParameter", "names and values must have the same length")
            if names is None:
                names = ["%s%d" % (prefix, start + i) for i in range(len(values))]
            for n in names:
                if not NAME_RE.match(n):
                    raise KVError(400, "BadParameter", "Invalid secret name %r" % n[:130])
            attrs = now_attrs()
            with st.lock:
                for n, v in zip(names, values):
                    s = st.secrets.get(n)
                    if s is None:
                        s = st.secrets[n] = {"versions": {}, "order": []}
                        st.secret_names.append(n)
                    ver = uuid.uuid4().hex
                    s["versions"][ver] = {"value": str(v), "tags": dict(tags), "contentType": ctype,
                                          "attributes": dict(attrs)}
                    s["order"].append(ver)
            return self._send(200, {"count": len(names), "first": names[0] if names else None,
                                    "last": names[-1] if names else None})
        raise KVError(404, "NotFound", "Unknown stand-in hook.")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, state, ctx, access_log):
        super().__init__(addr, handler)
        self.state = state
        self.ctx = ctx
        self.access_log = access_log
        self.stopping = False

    def get_request(self):
        sock, addr = self.socket.accept()
        return sock, addr

    def finish_request(self, request, client_address):
        # TLS handshake in the worker thread so a slow client cannot block accept()
        try:
            # avoid Nagle + delayed-ACK 40 ms stalls (headers and body are separate writes)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(30)
            tls = self.ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):  # quiet: no tracebacks with data
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tenant", default="standin-tenant")
    ap.add_argument("--client-id", default="standin-client")
    ap.add_argument("--client-secret-file", default=None,
                    help="file holding the client secret (default secret: 'standin-secret')")
    ap.add_argument("--identity-header", default="standin")
    ap.add_argument("--log", action="store_true", help="access log on stderr (no bodies/headers)")
    args = ap.parse_args()
    if args.client_secret_file:
        with open(args.client_secret_file, "r", encoding="utf-8") as f:
            args.client_secret = f.read().strip()
    else:
        args.client_secret = "standin-secret"
    ca_path, ctx = make_tls(args.dir)
    cert_paths, cert_reg = make_client_cert(args.dir, args.client_id)
    state = State(args)
    state.client_certs.append(cert_reg)
    srv = Server(("127.0.0.1", args.port), Handler, state, ctx, args.log)
    port = srv.server_address[1]
    state.vault_url = "https://127.0.0.1:%d" % port

    def stop(signum, frame):
        srv.stopping = True
        state.outage_cleared.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(json.dumps({"ready": True, "port": port, "ca": os.path.abspath(ca_path),
                                 "vault_url": state.vault_url, "authority": state.vault_url,
                                 "tenant": args.tenant, "client_id": args.client_id,
                                 **cert_paths, "client_cert_password": PFX_PASSWORD}) + "\n")
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
