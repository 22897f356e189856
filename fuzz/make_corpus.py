#!/usr/bin/env python3
"""Builds the committed seed corpus fuzz/corpus/<target>/ from the repository's own test
vectors (tests/vectors/, keystores/, the Web3Signer OpenAPI examples copied into
tests/vectors/eth2-signing/). Reads nothing outside the repository.

Each seed is written as fuzz/corpus/<target>/<sha1 of its bytes>, the name libFuzzer uses.
Targets with a mode byte (see each target's doc) get it prepended: 0x00 for the raw mode,
0x01 for the structured mode. Running it again gives the same files; stale seeds are
removed.

Usage: python3 fuzz/make_corpus.py
"""

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
VECTORS = ROOT / "tests" / "vectors"
CORPUS = FUZZ / "corpus"

TARGETS = [
    "tezos_payload",
    "tezos_operations",
    "eth2_plan",
    "interchange",
    "keystore",
    "base58check",
    "octez_secret_keys",
    "key_config",
]

RAW = b"\x00"
STRUCTURED = b"\x01"

B58_ALPHABET = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
B58_PREFIXES = (
    "tz1", "tz2", "tz3", "tz4", "edpk", "sppk", "p2pk", "BLpk", "edsk", "spsk", "p2sk",
    "BLsk", "edesk", "spesk", "p2esk", "BLesk", "edsig", "spsig1", "p2sig", "BLsig", "sig",
    "Net", "B",
)
SECRET_PREFIXES = ("edsk", "spsk", "p2sk", "BLsk")
ENCRYPTED_PREFIXES = ("edesk", "spesk", "p2esk", "BLesk")
TEZOS_MAGIC = {0x01, 0x02, 0x03, 0x05, 0x11, 0x12, 0x13}


def walk(value):
    """Yields every JSON value in a tree, depth first."""
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def json_files(directory):
    return sorted(p for p in directory.rglob("*.json") if p.is_file())


def is_hex(s):
    return len(s) % 2 == 0 and len(s) >= 2 and re.fullmatch(r"[0-9a-fA-F]+", s) is not None


def is_b58(s):
    return (
        20 <= len(s) <= 200
        and set(s) <= B58_ALPHABET
        and s.startswith(B58_PREFIXES)
    )


def zarith(n):
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n == 0:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def operations():
    """A few operations in the octez binary encoding ("Operation encodings"): manager
    operations with a tz1 source, a ballot, proposals, and staking calls."""
    src = bytes([0]) + bytes(range(1, 21))
    header = lambda tag: bytes([tag]) + src + zarith(1420) + zarith(7654321) + zarith(10600) + zarith(257)
    own = bytes([0]) + src
    other = bytes([0, 0]) + bytes(range(21, 41))
    kt1 = bytes([1]) + bytes(range(41, 61)) + b"\x00"
    unit = b"\x00\x00\x00\x02\x03\x0b"
    named = lambda name: b"\xff\xff" + bytes([len(name)]) + name + unit
    ops = {
        "reveal": header(107) + b"\x00" + bytes(32),
        "reveal_bls_proof": header(107) + b"\x03" + bytes(48) + b"\xff" + bytes(96),
        "reveal_no_proof": header(107) + b"\x01" + bytes(33) + b"\x00",
        "transfer": header(108) + zarith(10**6) + other + b"\x00",
        "transfer_kt1": header(108) + zarith(10**12) + kt1 + b"\x00",
        "call_kt1_default": header(108) + zarith(0) + kt1 + b"\xff\x00" + unit,
        "stake_own": header(108) + zarith(10**9) + own + b"\xff\x06" + unit,
        "stake_own_named": header(108) + zarith(10**9) + own + named(b"stake"),
        "stake_kt1": header(108) + zarith(10**12) + kt1 + named(b"stake"),
        "unstake_other": header(108) + zarith(5) + other + b"\xff\x07" + unit,
        "finalize_own": header(108) + zarith(0) + own + named(b"finalize_unstake"),
        "sdp_own": header(108) + zarith(0) + own + b"\xff\x09" + unit,
        "origination": header(109) + zarith(0) + b"\x00" + b"\x00\x00\x00\x02\x02\x00" * 2,
        "delegation": header(110) + b"\xff" + src,
        "undelegation": header(110) + b"\x00",
        "ballot": b"\x06" + src + b"\x00\x00\x00\x07" + bytes(32) + b"\x00",
        "proposals": b"\x05" + src + b"\x00\x00\x00\x07" + b"\x00\x00\x00\x40" + bytes(64),
    }
    batches = [[k] for k in ops] + [["reveal", "transfer"], ["reveal_no_proof", "stake_own", "delegation"]]
    return [b"".join(ops[k] for k in batch) for batch in batches]


def main():
    seeds = {t: set() for t in TARGETS}
    rng = random.Random(14)

    tezos_docs = [load_json(p) for p in json_files(VECTORS / "tezos")]
    all_strings = set()
    for doc in tezos_docs:
        for v in walk(doc):
            if isinstance(v, str):
                all_strings.add(v)

    # Tezos payloads: hex strings starting with a magic byte.
    payloads = set()
    for s in all_strings:
        h = s[2:] if s.startswith("0x") else s
        if is_hex(h):
            b = bytes.fromhex(h)
            if b[0] in TEZOS_MAGIC:
                payloads.add(b)
    for b in sorted(payloads):
        seeds["tezos_payload"].add(b)
        if b[0] == 0x03 and len(b) > 33:
            seeds["tezos_operations"].add(RAW + b[33:])
    for contents in operations():
        seeds["tezos_operations"].add(RAW + contents)
        seeds["tezos_payload"].add(b"\x03" + bytes(range(32)) + contents)
    for _ in range(8):
        seeds["tezos_operations"].add(STRUCTURED + rng.randbytes(rng.randrange(16, 200)))

    # base58check strings, and the secret keys among them.
    b58 = sorted(s for s in all_strings if is_b58(s))
    for s in b58:
        seeds["base58check"].add(b"\x01" + s.encode())
    for s in b58[:8]:
        seeds["base58check"].add(b"\x00" + bytes([rng.randrange(24)]) + rng.randbytes(64))
    secrets = sorted(s for s in b58 if s.startswith(SECRET_PREFIXES))
    encrypted = sorted(s for s in b58 if s.startswith(ENCRYPTED_PREFIXES))
    for s in sorted(all_strings):
        for scheme in ("encrypted:", "unencrypted:"):
            if s.startswith(scheme):
                (encrypted if scheme == "encrypted:" else secrets).append(s[len(scheme):])

    # octez secret_keys files.
    for i, s in enumerate(secrets):
        entries = [{"name": f"baker{i}", "value": f"unencrypted:{s}"}]
        seeds["octez_secret_keys"].add(RAW + json.dumps(entries).encode())
    if secrets:
        entries = [{"name": f"k{i}", "value": f"unencrypted:{s}"} for i, s in enumerate(secrets)]
        seeds["octez_secret_keys"].add(RAW + json.dumps(entries, indent=2).encode())
    for i, s in enumerate(encrypted):
        entries = [{"name": f"enc{i}", "value": f"encrypted:{s}"}]
        seeds["octez_secret_keys"].add(RAW + json.dumps(entries).encode())
    seeds["octez_secret_keys"].add(RAW + b'[{"name": "ledger", "value": "ledger://a/b"}]')
    seeds["octez_secret_keys"].add(RAW + b"[]")
    for _ in range(4):
        seeds["octez_secret_keys"].add(STRUCTURED + rng.randbytes(120))

    # Key configs (YAML).
    configs = []
    for s in secrets[:6]:
        configs.append(f"type: tezos-secret\nsecretKey: unencrypted:{s}\n")
        configs.append(
            f"type: tezos-secret\nsecretKey: {s}\n"
            "policy:\n  allow: [block, preattestation, attestation, generic]\n"
            "  operations: [transaction, reveal, stake]\n"
        )
    for s in encrypted[:2]:
        configs.append(f"type: tezos-secret\nsecretKey: encrypted:{s}\npasswordFile: no-such.txt\n")
    for v in walk(load_json(VECTORS / "eip2333" / "vectors.json")):
        if isinstance(v, dict):
            for key in ("sk", "child_sk", "master_sk"):
                sk = v.get(key)
                if isinstance(sk, (int, str)):
                    n = int(sk, 0) if isinstance(sk, str) else sk
                    if 0 < n < 2**256:
                        configs.append(f"type: file-raw\nkeyType: BLS\nprivateKey: \"0x{n:064x}\"\n")
    configs += [
        "type: file-keystore\nkeyType: BLS\nkeystoreFile: no-such.json\nkeystorePasswordFile: no-such.txt\n",
        "type: pkcs11\nmodule: /no/such/module.so\ntokenLabel: t\npinFile: no-such-pin\nkeyLabel: k\n"
        "policy: { allow: [block] }\n",
        "type: pkcs11\nmodule: /no/such/module.so\nslotId: 1\npinEnv: PIN\nkeyId: '0a0b'\ntimeoutMs: 10\nsessions: 2\n",
        "type: pkcs11-wrapped-bls\nmodule: /no/such/module.so\nslotId: 0\npinEnv: P\n"
        "wrappedKeystoreFile: no-such.json\naesKeyLabel: a\n",
        "type: nope\n",
        "keyType: BLS\n",
    ]
    for c in configs:
        seeds["key_config"].add(c.encode())

    # Keystores: the vectors as they are (large KDF parameters: the target skips them) and
    # with tiny parameters (decrypted: checksum mismatch, or further).
    keystores = [
        p for p in json_files(VECTORS / "eip2335") + json_files(ROOT / "keystores")
        if "crypto" in p.read_text(encoding="utf-8", errors="replace")
    ]
    for p in keystores:
        try:
            ks = load_json(p)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        seeds["keystore"].add(RAW + json.dumps(ks).encode())
        params = ks.get("crypto", {}).get("kdf", {}).get("params") if isinstance(ks, dict) else None
        if isinstance(params, dict):
            for k, small in (("n", 16), ("c", 16), ("r", 1)):
                if k in params:
                    params[k] = small
            seeds["keystore"].add(RAW + json.dumps(ks).encode())
    for _ in range(6):
        seeds["keystore"].add(STRUCTURED + rng.randbytes(140))

    # eth2 signing request bodies.
    for p in json_files(VECTORS / "eth2-signing"):
        for v in walk(load_json(p)):
            if isinstance(v, dict) and isinstance(v.get("type"), str) and v["type"].isupper():
                seeds["eth2_plan"].add(RAW + json.dumps(v).encode())
    for _ in range(12):
        seeds["eth2_plan"].add(STRUCTURED + rng.randbytes(rng.randrange(40, 260)))

    # EIP-3076 interchange files.
    for p in json_files(VECTORS / "slashing-interchange"):
        for v in walk(load_json(p)):
            if isinstance(v, dict) and "metadata" in v and "data" in v:
                seeds["interchange"].add(json.dumps(v).encode())

    for target in TARGETS:
        out = CORPUS / target
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for seed in sorted(seeds[target]):
            (out / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        print(f"{target}: {len(seeds[target])} seeds")


if __name__ == "__main__":
    main()
