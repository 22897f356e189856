#!/usr/bin/env python3
"""Test-fixture helper: real EIP-2335 keystores made by ethstaker-deposit.

All key material and crypto comes from the ethstaker-deposit package (the
tool stakers use) and py_ecc, never from this script:

  * mnemonic -> EIP-2333 secret key at EIP-2334 path m/12381/3600/<i>/0/0:
    ethstaker_deposit.key_handling.key_derivation.path.mnemonic_and_path_to_key
    (the same call ethstaker_deposit.credentials.Credential makes)
  * encryption: Pbkdf2Keystore / ScryptKeystore.encrypt(secret=, password=, path=)
    and Keystore.save() (the same calls Credential.signing_keystore / save_signing_keystore make)
  * public key: py_ecc G2ProofOfPossession.SkToPk

Modes:
  gen_keystores.py --out DIR --count N --password PW [--kdf pbkdf2|scrypt] [--mnemonic "..."]
      writes DIR/keystore-m_12381_3600_<i>_0_0.json   (EIP-2335 keystore, mode 0400 like the real CLI)
             DIR/keystore-m_12381_3600_<i>_0_0.txt    (exactly PW, UTF-8, no newline)
      stdout: {"pubkeys": ["0x...", ...], "kdf": "pbkdf2"}
  gen_keystores.py --verify PUBKEY_HEX MESSAGE_HEX SIGNATURE_HEX
      BLS verify with py_ecc G2ProofOfPossession.Verify; prints "ok" (exit 0) or "bad" (exit 1).

Test keys only: the default mnemonic is public.
"""
import argparse
import json
import os
import sys

# Public BIP-39 test vector mnemonic (also used by ethstaker-deposit's own tests). NEVER use for real funds.
DEFAULT_MNEMONIC = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)


def _hex(s: str) -> bytes:
    s = s.strip()
    if s[:2] in ("0x", "0X"):
        s = s[2:]
    return bytes.fromhex(s)


def verify(pubkey_hex: str, message_hex: str, signature_hex: str) -> int:
    from py_ecc.bls import G2ProofOfPossession as bls

    try:
        ok = bool(bls.Verify(_hex(pubkey_hex), _hex(message_hex), _hex(signature_hex)))
    except Exception:  # malformed hex / point encodings count as a failed verification
        ok = False
    print("ok" if ok else "bad")
    return 0 if ok else 1


def generate(out: str, count: int, password: str, kdf: str, mnemonic: str) -> int:
    from py_ecc.bls import G2ProofOfPossession as bls
    from ethstaker_deposit.key_handling.key_derivation.path import mnemonic_and_path_to_key
    from ethstaker_deposit.key_handling.keystore import Keystore, Pbkdf2Keystore, ScryptKeystore

    keystore_cls = Pbkdf2Keystore if kdf == "pbkdf2" else ScryptKeystore
    # Same whitespace handling as the deposit CLI before derivation (it lower-cases and splits on spaces).
    # Checksum validation (reconstruct_mnemonic) is not possible with the PyPI wheel: it does not ship the
    # BIP-39 word lists, but derivation itself does not need them.
    mnemonic = " ".join(mnemonic.lower().split())

    os.makedirs(out, exist_ok=True)
    pubkeys = []
    for i in range(count):
        path = f"m/12381/3600/{i}/0/0"  # EIP-2334 signing key, as in Credential.signing_key_path
        stem = "keystore-" + path.replace("/", "_")  # deposit CLI naming, minus its -<timestamp> suffix
        sk = mnemonic_and_path_to_key(mnemonic=mnemonic, path=path, password="")
        keystore = keystore_cls.encrypt(secret=sk.to_bytes(32, "big"), password=password, path=path)

        pubkey = bytes(bls.SkToPk(sk))
        if keystore.pubkey != pubkey.hex() or len(pubkey) != 48:
            raise SystemExit(f"pubkey mismatch for {path}")  # should never happen

        json_path = os.path.join(out, stem + ".json")
        try:
            keystore.save(json_path)  # the package's writer: O_EXCL, mode 0400 (as the real CLI writes them)
        except FileExistsError:
            raise SystemExit(f"error: {json_path} already exists (use a fresh --out directory)")
        # Cheap self-check of the written file with the package's own parser (JSON schema validation).
        Keystore.from_file(json_path)

        fd = os.open(os.path.join(out, stem + ".txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(password.encode("utf-8"))
        pubkeys.append("0x" + pubkey.hex())

    print(json.dumps({"pubkeys": pubkeys, "kdf": kdf}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--verify", nargs=3, metavar=("PUBKEY_HEX", "MESSAGE_HEX", "SIGNATURE_HEX"),
                   help="verify a BLS signature with py_ecc and exit 0 (ok) / 1 (bad)")
    p.add_argument("--out", help="output directory (created if missing)")
    p.add_argument("--count", type=int, help="number of validator keys, indices 0..N-1")
    p.add_argument("--password", help="keystore password (also written to each .txt)")
    p.add_argument("--kdf", choices=("pbkdf2", "scrypt"), default="pbkdf2",
                   help="keystore KDF (default pbkdf2: faster than scrypt)")
    p.add_argument("--mnemonic", default=DEFAULT_MNEMONIC,
                   help="BIP-39 mnemonic (default: public 'abandon ... about' test mnemonic)")
    a = p.parse_args(argv)

    if a.verify:
        if a.out or a.count is not None or a.password is not None:
            p.error("--verify cannot be combined with generation options")
        return verify(*a.verify)
    if not a.out or a.count is None or a.password is None:
        p.error("--out, --count and --password are required (or use --verify)")
    if a.count < 1:
        p.error("--count must be >= 1")
    return generate(a.out, a.count, a.password, a.kdf, a.mnemonic)


if __name__ == "__main__":
    sys.exit(main())
