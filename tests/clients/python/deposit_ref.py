#!/usr/bin/env python3
"""Reference deposit data from ethstaker-deposit (the tool stakers use), for palisade's
ceremony tests.

The PyPI wheel of ethstaker-deposit 1.3.1 lacks the data files its interactive CLI loads, so
this makes the calls the CLI's generate_keys() makes, in the same order: the withdrawal
address is checked (EIP-55) and normalised, the amount is MIN_ACTIVATION_AMOUNT (0x01) or the
validated amount (0x02) times the chain's MULTIPLIER, one Credential per index (EIP-2333 keys
at m/12381/3600/i/0/0), and the file is written by export_deposit_data_json, then checked with
validate_deposit. Only the package's own code computes keys, signatures and roots.

usage: deposit_ref.py --out DIR --mnemonic-file F --start I --count N --chain NAME
                      --address 0x… [--compounding --amount-eth X] --timestamp T
prints {"path": …, "pubkeys": ["0x…", …]} on stdout.
"""
import argparse
import json

from eth_utils import is_checksum_address, to_normalized_address
from ethstaker_deposit.credentials import Credential
from ethstaker_deposit.settings import get_chain_setting
from ethstaker_deposit.utils.constants import ETH2GWEI
from ethstaker_deposit.utils.export_data import export_deposit_data_json
from ethstaker_deposit.utils.validation import validate_deposit, validate_deposit_amount


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--mnemonic-file", required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--chain", default="mainnet")
    p.add_argument("--address", required=True)
    p.add_argument("--compounding", action="store_true")
    p.add_argument("--amount-eth", default="32")
    p.add_argument("--timestamp", type=int, required=True)
    a = p.parse_args()
    mnemonic = open(a.mnemonic_file).read().strip()
    chain = get_chain_setting(a.chain)
    if not is_checksum_address(a.address):
        raise SystemExit(f"not an EIP-55 checksummed address: {a.address}")
    address = to_normalized_address(a.address)
    if a.compounding:
        amount = validate_deposit_amount(a.amount_eth, params={"chain_setting": chain})
    else:
        amount = chain.MIN_ACTIVATION_AMOUNT * ETH2GWEI
    amount = amount * chain.MULTIPLIER
    creds = [
        Credential(mnemonic=mnemonic, mnemonic_password="", index=i, amount=amount,
                   chain_setting=chain, hex_withdrawal_address=address,
                   compounding=a.compounding)
        for i in range(a.start, a.start + a.count)
    ]
    path = export_deposit_data_json(a.out, a.timestamp, [c.deposit_datum_dict for c in creds])
    for d, c in zip(json.load(open(path)), creds):
        if not validate_deposit(d, chain, c):
            raise SystemExit(f"ethstaker-deposit rejects its own deposit for index {c.index}")
    print(json.dumps({
        "path": path,
        "pubkeys": ["0x" + c.deposit_datum_dict["pubkey"].hex() for c in creds],
    }))


if __name__ == "__main__":
    main()
