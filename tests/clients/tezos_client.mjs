#!/usr/bin/env node
// Independent Tezos client check for palisade's octez-signer-compatible HTTP API.
//
// Palisade's Tezos side is exercised here with Taquito, the JavaScript Tezos SDK,
// so none of palisade's Rust code is involved in encoding keys, building the
// signed bytes or verifying signatures:
//   - @taquito/remote-signer's RemoteSigner is a real octez-signer client: it
//     fetches the public key, posts watermarked bytes and verifies the answer;
//   - @taquito/utils' verifySignature re-checks every signature independently;
//   - @taquito/signer's InMemorySigner decodes (and decrypts) secret keys and
//     produces the expected BLS signatures and proofs of possession.
// The newest @taquito/remote-signer on the npm registry is 21.0.0, older than
// the signer/utils pair used here (24.2.0: the newest release declaring Node 20
// support; it has BLS (tz4) keys, signatures and proofs of possession). The
// overrides in package.json keep RemoteSigner on its own 21.0.0 dependencies.
//
// Usage: node tezos_client.mjs <mode> '<json>'
// Prints exactly one JSON line on stdout and exits 0 when every check passes;
// otherwise prints "tezos_client <mode>: <reason>" on stderr and exits 1
// (2 for a malformed command line).
//
// Modes and their JSON argument (remote and tz4 first GET /authorized_keys,
// which must answer a JSON object):
//   remote  {"url", "keys": [{"pkh"}...], "count", "start_level", "check_watermark"?}
//           Per key: RemoteSigner publicKeyHash()/publicKey(), then `count`
//           sign() calls alternating attestations (watermark 0x13, levels
//           start_level, start_level+2, ...; round 0) and generic transaction
//           operations (watermark 0x03). Every signature must carry the curve's
//           own prefix, verify with verifySignature and be low-S for tz2/tz3.
//           RemoteSigner 21.0.0 cannot handle tz4 (it has no BLS support); for a
//           tz4 key the first sign() is tried through it and, when it fails for
//           that reason, the same messages are posted directly and verified
//           with verifySignature (the first one again, byte-identical).
//           With "check_watermark": true, each key then re-signs its last
//           attestation (same bytes: same signature expected) and tries a
//           different attestation at start_level (HTTP 409 expected).
//           Output: {"ok":true,"mode":"remote","signed":N,"remote_signer_tz4":
//           true|false|null,"authorized_keys":{...},"per_key":{pkh:{...}},"versions":{...}}
//   tz4     {"url", "pkh", "secret_key", "count", "start_level", "check_watermark"?}
//           Plain HTTP: GET /keys/{pkh} must equal InMemorySigner's public key
//           (and pkh); `count` attestations POSTed to /keys/{pkh} must equal
//           InMemorySigner.sign() byte for byte and verify; GET
//           /bls_prove_possession/{pkh} must equal InMemorySigner.provePossession()
//           and verify with verifySignature(pk bytes, pk, pop, undefined, true).
//           Output: {"ok":true,"mode":"tz4","pkh","public_key","signed":N,
//           "proof_of_possession","authorized_keys",...,"versions":{...}}
//   decrypt {"secret_key": "edesk…|spesk…|p2esk…|BLesk…", "passphrase"}
//           Output: {"pkh","public_key"} from InMemorySigner.fromSecretKey(sk, passphrase)
//   keys    {"secret_keys": ["edsk…", "spsk…", "p2sk…", "BLsk…", ...]}
//           Output: [{"pkh","public_key"}, ...] in input order, from InMemorySigner.

import {randomBytes} from "node:crypto";
import {createRequire} from "node:module";
import {RemoteSigner} from "@taquito/remote-signer";
import {InMemorySigner} from "@taquito/signer";
import {
  PrefixV2,
  b58DecodeAndCheckPrefix,
  buf2hex,
  getPkhfromPk,
  verifySignature,
} from "@taquito/utils";

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------- errors and CLI

class UsageError extends Error {}
class CheckError extends Error {}

function check(cond, msg) {
  if (!cond) throw new CheckError(typeof msg === "function" ? msg() : msg);
}

const USAGE = "usage: node tezos_client.mjs <remote|tz4|decrypt|keys> '<json argument>'";

function describe(err) {
  if (!(err instanceof Error)) return String(err);
  let s = err.message || err.name;
  // Taquito's HTTP errors carry the status and body separately.
  if (err.status !== undefined && !s.includes(String(err.status))) s += ` (HTTP ${err.status})`;
  if (err.name && err.name !== "Error" && !s.startsWith(err.name)) s = `${err.name}: ${s}`;
  return s;
}

// ---------------------------------------------------------------- argument validation

function reqString(obj, key) {
  const v = obj[key];
  if (typeof v !== "string" || v.length === 0) throw new UsageError(`"${key}" must be a non-empty string`);
  return v;
}

function reqInt(obj, key, min, max) {
  const v = obj[key];
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`"${key}" must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

function optBool(obj, key) {
  const v = obj[key];
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new UsageError(`"${key}" must be a boolean`);
  return v;
}

function reqUrl(obj) {
  const url = reqString(obj, "url");
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`"url" must be an http(s) URL, got ${url}`);
  return url.replace(/\/+$/, "");
}

// count and start_level together must keep every level inside int32.
function levelArgs(arg) {
  const count = reqInt(arg, "count", 1, 100000);
  const startLevel = reqInt(arg, "start_level", 0, 0x7fffffff - count);
  return {count, startLevel};
}

// ---------------------------------------------------------------- bytes

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function u16be(n) {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

function i32be(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, false);
  return b;
}

// Tezos "N" (zarith natural): 7 bits per byte, least significant group first,
// high bit set on every byte but the last.
function zarith(n) {
  let v = BigInt(n);
  if (v < 0n) throw new Error("zarith natural must be >= 0");
  const out = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

function hex(bytes) {
  return buf2hex(bytes);
}

function fromHex(s) {
  return Uint8Array.from(Buffer.from(s, "hex"));
}

// ---------------------------------------------------------------- keys

const KINDS = {
  tz1: {tag: 0, pk: PrefixV2.Ed25519PublicKey, sig: PrefixV2.Ed25519Signature, order: null},
  tz2: {
    tag: 1,
    pk: PrefixV2.Secp256k1PublicKey,
    sig: PrefixV2.Secp256k1Signature,
    order: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  },
  tz3: {
    tag: 2,
    pk: PrefixV2.P256PublicKey,
    sig: PrefixV2.P256Signature,
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  tz4: {tag: 3, pk: PrefixV2.BLS12_381PublicKey, sig: PrefixV2.BLS12_381Signature, order: null},
};

function parsePkh(pkh) {
  let decoded;
  try {
    decoded = b58DecodeAndCheckPrefix(pkh, Object.keys(KINDS));
  } catch (e) {
    throw new UsageError(`not a tz1/tz2/tz3/tz4 address: ${pkh} (${describe(e)})`);
  }
  const [hash, prefix] = decoded;
  return {pkh, prefix, hash, ...KINDS[prefix]};
}

// The public key must have the key kind's prefix and hash to the expected pkh.
function checkPublicKey(key, publicKey, who) {
  check(typeof publicKey === "string", `${who}: public key for ${key.pkh} is not a string: ${JSON.stringify(publicKey)}`);
  let decoded;
  try {
    decoded = b58DecodeAndCheckPrefix(publicKey, [key.pk]);
  } catch (e) {
    throw new CheckError(`${who}: public key ${publicKey} for ${key.pkh} is not a valid ${key.pk} key: ${describe(e)}`);
  }
  const derived = getPkhfromPk(publicKey);
  check(derived === key.pkh, `${who}: public key ${publicKey} hashes to ${derived}, not ${key.pkh}`);
  return decoded[0];
}

// A returned signature must be the curve's own prefixed form (edsig/spsig1/
// p2sig/BLsig), verify over the watermarked bytes, and be low-S for ECDSA.
function checkSignature(key, publicKey, signedHex, signature, where) {
  check(typeof signature === "string", `${where}: signature is not a string: ${JSON.stringify(signature)}`);
  let raw;
  try {
    [raw] = b58DecodeAndCheckPrefix(signature, [key.sig]);
  } catch (e) {
    throw new CheckError(`${where}: ${signature} is not a ${key.sig} signature: ${describe(e)}`);
  }
  let ok;
  try {
    ok = verifySignature(signedHex, publicKey, signature);
  } catch (e) {
    throw new CheckError(`${where}: verifySignature threw: ${describe(e)}`);
  }
  check(ok, `${where}: verifySignature rejects ${signature} over ${signedHex} for ${publicKey}`);
  if (key.order !== null) {
    check(raw.length === 64, `${where}: ECDSA signature is ${raw.length} bytes, expected 64`);
    const s = BigInt(`0x${hex(raw.subarray(32))}`);
    check(s <= key.order / 2n, `${where}: ECDSA signature is not low-S (s = 0x${s.toString(16)})`);
  }
}

// Proves verifySignature is not vacuous for this key: one flipped message byte
// must make it reject.
function checkTamperRejected(publicKey, signedHex, signature, where) {
  const bytes = fromHex(signedHex);
  bytes[bytes.length - 1] ^= 0x01;
  let ok;
  try {
    ok = verifySignature(hex(bytes), publicKey, signature);
  } catch {
    ok = false;
  }
  check(!ok, `${where}: verifySignature also accepts a tampered message; the verifier is broken`);
}

// ---------------------------------------------------------------- payloads

const MAINNET_CHAIN_ID = fromHex("7a06a770");
const ATTESTATION_WATERMARK = Uint8Array.of(0x13);
const GENERIC_WATERMARK = Uint8Array.of(0x03);
const ATTESTATION_TAG = 0x15;
const TRANSACTION_TAG = 0x6c;

// Attestation bytes as signed after the 0x13 magic byte: chain id, branch,
// operation tag, slot, level, round, block payload hash.
function attestationPayload(level, slot, round = 0) {
  return concat(
    MAINNET_CHAIN_ID,
    randomBytes(32),
    Uint8Array.of(ATTESTATION_TAG),
    u16be(slot & 0xffff),
    i32be(level),
    i32be(round),
    randomBytes(32),
  );
}

// A manager operation (signed after the 0x03 magic byte): branch, then one
// transaction content: tag, source, fee, counter, gas limit, storage limit,
// amount, destination (implicit account: 0x00 + tagged key hash) and no
// parameters.
function transactionPayload(key, i) {
  const source = concat(Uint8Array.of(key.tag), key.hash);
  return concat(
    randomBytes(32),
    Uint8Array.of(TRANSACTION_TAG),
    source,
    zarith(1000 + i),
    zarith(100000 + i),
    zarith(1527),
    zarith(257),
    zarith(1 + i * 1000),
    Uint8Array.of(0x00),
    source,
    Uint8Array.of(0x00),
  );
}

// Message i of a run: even i are attestations at start_level + i, odd i are
// generic transactions.
function buildMessages(key, count, startLevel) {
  const msgs = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const level = startLevel + i;
      msgs.push({kind: "attestation", level, watermark: ATTESTATION_WATERMARK, bytes: attestationPayload(level, i)});
    } else {
      msgs.push({kind: "generic", watermark: GENERIC_WATERMARK, bytes: transactionPayload(key, i)});
    }
  }
  return msgs;
}

// ---------------------------------------------------------------- plain HTTP

async function http(method, url, body) {
  const init = {method, signal: AbortSignal.timeout(30000)};
  if (body !== undefined) {
    init.headers = {"Content-Type": "application/json"};
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new CheckError(`${method} ${url} failed: ${describe(e.cause ?? e)}`);
  }
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {status: res.status, json, text};
}

async function httpOk(method, url, body) {
  const r = await http(method, url, body);
  check(r.status === 200, `${method} ${url}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
  check(r.json !== undefined, `${method} ${url}: response is not JSON: ${r.text.slice(0, 500)}`);
  return r.json;
}

async function postSign(url, pkh, signedHex) {
  const res = await httpOk("POST", `${url}/keys/${pkh}`, signedHex);
  check(res && typeof res.signature === "string", () => `POST /keys/${pkh}: no "signature" in ${JSON.stringify(res)}`);
  return res.signature;
}

async function authorizedKeys(url) {
  const res = await httpOk("GET", `${url}/authorized_keys`);
  check(res !== null && typeof res === "object" && !Array.isArray(res),
    `GET /authorized_keys: expected a JSON object, got ${JSON.stringify(res)}`);
  return res;
}

// The error body palisade (like octez-signer) returns: [{"id","kind","msg"}...].
function isErrorList(json) {
  return Array.isArray(json) && json.length > 0 && json.every((e) => e && typeof e === "object" && "id" in e && "kind" in e);
}

function versions() {
  const v = (name) => require(`${name}/package.json`).version;
  return {
    "@taquito/remote-signer": v("@taquito/remote-signer"),
    "@taquito/signer": v("@taquito/signer"),
    "@taquito/utils": v("@taquito/utils"),
    node: process.versions.node,
  };
}

// ---------------------------------------------------------------- mode: remote

// RemoteSigner 21.0.0 knows ed/sp/p2 only: for tz4 its sign() dies on the BLS
// signature prefix or public key before any verification. Such failures (no
// HTTP status) mean "unsupported"; an HTTP error is a real failure.
function isUnsupportedTz4(key, err) {
  return key.prefix === "tz4" && err instanceof Error && err.status === undefined && !(err instanceof CheckError);
}

async function remoteKey(url, key, count, startLevel, checkWatermark) {
  const who = `RemoteSigner(${key.pkh})`;
  let signer;
  try {
    signer = new RemoteSigner(key.pkh, url);
  } catch (e) {
    throw new CheckError(`${who}: constructor rejected the key: ${describe(e)}`);
  }
  const pkh = await signer.publicKeyHash();
  check(pkh === key.pkh, `${who}.publicKeyHash() = ${pkh}`);
  let publicKey;
  try {
    publicKey = await signer.publicKey();
  } catch (e) {
    throw new CheckError(`${who}.publicKey() failed: ${describe(e)}`);
  }
  checkPublicKey(key, publicKey, `${who}.publicKey()`);

  const msgs = buildMessages(key, count, startLevel);
  const out = {
    kind: key.prefix,
    public_key: publicKey,
    signed: 0,
    attestations: 0,
    generic: 0,
    via: "RemoteSigner",
  };
  let direct = false;
  let lastAttestation = null;

  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i];
    const bytesHex = hex(m.bytes);
    const signedHex = hex(concat(m.watermark, m.bytes));
    const where = `${key.pkh} message ${i} (${m.kind}${m.level !== undefined ? ` level ${m.level}` : ""})`;
    let signature;
    if (!direct) {
      let res;
      try {
        res = await signer.sign(bytesHex, m.watermark);
      } catch (e) {
        if (i === 0 && isUnsupportedTz4(key, e)) {
          out.via = "direct HTTP (RemoteSigner does not support tz4)";
          out.remote_signer_error = describe(e);
          direct = true;
        } else {
          throw new CheckError(`${where}: ${who}.sign failed: ${describe(e)}`);
        }
      }
      if (!direct) {
        check(res.bytes === bytesHex, `${where}: RemoteSigner returned bytes ${res.bytes}`);
        check(res.sbytes.startsWith(bytesHex), `${where}: RemoteSigner sbytes do not start with the bytes`);
        signature = res.prefixSig;
      }
    }
    if (direct) signature = await postSign(url, key.pkh, signedHex);
    checkSignature(key, publicKey, signedHex, signature, where);
    if (i === 0) checkTamperRejected(publicKey, signedHex, signature, where);
    out.signed++;
    if (m.kind === "attestation") {
      out.attestations++;
      lastAttestation = {m, signedHex, signature};
    } else {
      out.generic++;
    }
  }
  out.remote_signer = !direct;

  if (checkWatermark && lastAttestation) {
    out.watermark = await remoteWatermarkChecks(url, key, signer, direct, publicKey, lastAttestation, startLevel);
  }
  return out;
}

async function remoteWatermarkChecks(url, key, signer, direct, publicKey, last, startLevel) {
  const where = `${key.pkh} watermark check`;
  // 1. The identical bytes again: allowed, and the signature must be the same
  //    one (palisade returns the stored signature; Ed25519/BLS are
  //    deterministic anyway).
  let again;
  if (direct) {
    again = await postSign(url, key.pkh, last.signedHex);
  } else {
    try {
      again = (await signer.sign(hex(last.m.bytes), last.m.watermark)).prefixSig;
    } catch (e) {
      throw new CheckError(`${where}: re-signing identical bytes failed: ${describe(e)}`);
    }
  }
  checkSignature(key, publicKey, last.signedHex, again, `${where} (identical bytes)`);
  check(again === last.signature, `${where}: identical bytes signed to ${again}, first ${last.signature}`);

  // 2. Different bytes at start_level (at or below the last signed level) must
  //    be refused with HTTP 409.
  const lower = attestationPayload(startLevel, 0);
  const lowerHex = hex(concat(ATTESTATION_WATERMARK, lower));
  let status;
  let body = "";
  if (direct) {
    const r = await http("POST", `${url}/keys/${key.pkh}`, lowerHex);
    status = r.status;
    body = r.text;
    check(status !== 409 || isErrorList(r.json), `${where}: 409 body is not an error list: ${body}`);
  } else {
    try {
      await signer.sign(hex(lower), ATTESTATION_WATERMARK);
      status = 200;
    } catch (e) {
      status = e.status;
      body = e.body ?? describe(e);
    }
  }
  check(status === 409, `${where}: attestation at level ${startLevel} after level ${last.m.level} got ${status === 200 ? "signed" : `HTTP ${status}: ${body}`}, expected HTTP 409`);
  return {identical_resign: "same signature", lower_level: 409};
}

async function modeRemote(arg) {
  const url = reqUrl(arg);
  const {count, startLevel} = levelArgs(arg);
  const checkWatermark = optBool(arg, "check_watermark");
  if (!Array.isArray(arg.keys) || arg.keys.length === 0) throw new UsageError(`"keys" must be a non-empty array of {"pkh"}`);
  const keys = arg.keys.map((k) => parsePkh(reqString(k ?? {}, "pkh")));
  if (new Set(keys.map((k) => k.pkh)).size !== keys.length) throw new UsageError("duplicate pkh in \"keys\"");

  const authorized = await authorizedKeys(url);
  const perKey = {};
  let total = 0;
  let tz4Supported = null;
  for (const key of keys) {
    const r = await remoteKey(url, key, count, startLevel, checkWatermark);
    perKey[key.pkh] = r;
    total += r.signed;
    if (key.prefix === "tz4") tz4Supported = (tz4Supported ?? true) && r.remote_signer;
  }
  return {
    ok: true,
    mode: "remote",
    signed: total,
    remote_signer_tz4: tz4Supported,
    authorized_keys: authorized,
    per_key: perKey,
    versions: versions(),
  };
}

// ---------------------------------------------------------------- mode: tz4

async function modeTz4(arg) {
  const url = reqUrl(arg);
  const key = parsePkh(reqString(arg, "pkh"));
  if (key.prefix !== "tz4") throw new UsageError(`"pkh" must be a tz4 address, got ${key.pkh}`);
  const {count, startLevel} = levelArgs(arg);
  const checkWatermark = optBool(arg, "check_watermark");

  let local;
  try {
    local = await InMemorySigner.fromSecretKey(reqString(arg, "secret_key"));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`InMemorySigner cannot load "secret_key": ${describe(e)}`);
  }
  const localPk = await local.publicKey();
  const localPkh = await local.publicKeyHash();
  check(localPkh === key.pkh, `"secret_key" belongs to ${localPkh}, not ${key.pkh}`);

  const authorized = await authorizedKeys(url);
  const res = await httpOk("GET", `${url}/keys/${key.pkh}`);
  const publicKey = res?.public_key;
  check(publicKey === localPk, `GET /keys/${key.pkh}: public_key ${JSON.stringify(publicKey)}, InMemorySigner says ${localPk}`);
  const pkBytes = checkPublicKey(key, publicKey, `GET /keys/${key.pkh}`);

  let last = null;
  for (let i = 0; i < count; i++) {
    const level = startLevel + i;
    const payload = attestationPayload(level, i);
    const signedHex = hex(concat(ATTESTATION_WATERMARK, payload));
    const where = `${key.pkh} attestation ${i} (level ${level})`;
    const signature = await postSign(url, key.pkh, signedHex);
    const expected = (await local.sign(hex(payload), ATTESTATION_WATERMARK)).prefixSig;
    check(signature === expected, `${where}: palisade signed ${signature}, InMemorySigner ${expected} (bytes ${signedHex})`);
    checkSignature(key, publicKey, signedHex, signature, where);
    if (i === 0) checkTamperRejected(publicKey, signedHex, signature, where);
    last = {level, payload, signedHex, signature};
  }

  const popRes = await httpOk("GET", `${url}/bls_prove_possession/${key.pkh}`);
  const pop = popRes?.bls_prove_possession;
  const expectedPop = (await local.provePossession()).prefixSig;
  check(pop === expectedPop, `GET /bls_prove_possession/${key.pkh}: ${JSON.stringify(pop)}, InMemorySigner.provePossession() ${expectedPop}`);
  try {
    b58DecodeAndCheckPrefix(pop, [PrefixV2.BLS12_381Signature]);
  } catch (e) {
    throw new CheckError(`proof of possession ${pop} is not a BLsig: ${describe(e)}`);
  }
  check(verifySignature(pkBytes, publicKey, pop, undefined, true),
    `verifySignature(pop=true) rejects the proof of possession ${pop}`);
  // The POP uses its own domain separation tag: it must not pass as an
  // ordinary signature over the same bytes.
  check(!verifySignature(pkBytes, publicKey, pop),
    "the proof of possession also verifies as an ordinary signature (wrong DST)");

  const out = {
    ok: true,
    mode: "tz4",
    pkh: key.pkh,
    public_key: publicKey,
    signed: count,
    matches_in_memory_signer: true,
    proof_of_possession: pop,
    proof_of_possession_check: "InMemorySigner.provePossession() equal + verifySignature(pk, pk, pop, undefined, true)",
    authorized_keys: authorized,
    versions: versions(),
  };

  if (checkWatermark) {
    const where = `${key.pkh} watermark check`;
    const again = await postSign(url, key.pkh, last.signedHex);
    check(again === last.signature, `${where}: identical bytes signed to ${again}, first ${last.signature}`);
    const lowerHex = hex(concat(ATTESTATION_WATERMARK, attestationPayload(startLevel, 0)));
    const r = await http("POST", `${url}/keys/${key.pkh}`, lowerHex);
    check(r.status === 409, `${where}: attestation at level ${startLevel} after level ${last.level}: HTTP ${r.status} ${r.text.slice(0, 300)}, expected 409`);
    check(isErrorList(r.json), `${where}: 409 body is not an error list: ${r.text.slice(0, 300)}`);
    out.watermark = {identical_resign: "same signature", lower_level: 409};
  }
  return out;
}

// ---------------------------------------------------------------- modes: decrypt, keys

async function describeKey(secretKey, passphrase) {
  let signer;
  try {
    signer = await InMemorySigner.fromSecretKey(secretKey, passphrase);
  } catch (e) {
    // Name only the key's prefix: never echo secret key material.
    const kind = secretKey.match(/^(edesk|edsk|spesk|spsk|p2esk|p2sk|BLesk|BLsk)/)?.[0] ?? "unknown-prefix";
    throw new CheckError(`InMemorySigner.fromSecretKey(${kind}…) failed: ${describe(e)}`);
  }
  return {pkh: await signer.publicKeyHash(), public_key: await signer.publicKey()};
}

async function modeDecrypt(arg) {
  const sk = reqString(arg, "secret_key");
  if (typeof arg.passphrase !== "string") throw new UsageError(`"passphrase" must be a string`);
  return describeKey(sk, arg.passphrase);
}

async function modeKeys(arg) {
  if (!Array.isArray(arg.secret_keys)) throw new UsageError(`"secret_keys" must be an array of strings`);
  const out = [];
  for (const sk of arg.secret_keys) {
    if (typeof sk !== "string" || sk.length === 0) throw new UsageError(`"secret_keys" entries must be non-empty strings`);
    out.push(await describeKey(sk));
  }
  return out;
}

// ---------------------------------------------------------------- main

const MODES = {remote: modeRemote, tz4: modeTz4, decrypt: modeDecrypt, keys: modeKeys};

async function main() {
  const [mode, json, ...rest] = process.argv.slice(2);
  if (!MODES[mode] || json === undefined || rest.length > 0) throw new UsageError(USAGE);
  let arg;
  try {
    arg = JSON.parse(json);
  } catch (e) {
    throw new UsageError(`argument is not JSON: ${e.message}`);
  }
  if (arg === null || typeof arg !== "object" || Array.isArray(arg)) throw new UsageError("argument must be a JSON object");
  return MODES[mode](arg);
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = 0;
  },
  (err) => {
    const mode = process.argv[2] ?? "?";
    process.stderr.write(`tezos_client ${mode}: ${describe(err)}\n`);
    if (!(err instanceof UsageError) && !(err instanceof CheckError) && err instanceof Error && err.stack) {
      process.stderr.write(`${err.stack}\n`);
    }
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
