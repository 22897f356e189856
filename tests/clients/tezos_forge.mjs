#!/usr/bin/env node
// Forges one example of each Tezos operation kind that Taquito's local forger
// (@taquito/local-forging, pinned in package.json) supports, for palisade's
// operation-policy tests (tests/tezos_operations_policy.rs): none of palisade's
// Rust code is involved in producing these bytes.
//
// Usage: node tezos_forge.mjs
// Prints exactly one JSON line on stdout:
//   {"taquito_local_forging": "<version>", "branch": "<B…>",
//    "forged": [{"label", "kind", "forged_hex"}...]}
// where forged_hex is the unsigned operation (32-byte branch, then the contents),
// i.e. what a wallet sends to a signer after the 0x03 watermark. Exits 1 with a
// message on stderr if any example fails to forge or to parse back to itself.
//
// Taquito has no schema for smart_rollup_cement/publish/refute/timeout/recover_bond,
// vdf_revelation and the evidence operations; the tests build those from the octez
// layouts. It forges increase_paid_storage's amount as a natural where octez has a
// signed zarith (`Data_encoding.z`), so the example keeps the amount below 64,
// where the two encodings agree.
import { createRequire } from 'module';
import { readFileSync } from 'fs';
import { fileURLToPath } from 'url';
import { dirname, join } from 'path';

const require = createRequire(import.meta.url);
const { LocalForger, ProtocolsHash } = require('@taquito/local-forging');
const { b58Encode, PrefixV2 } = require('@taquito/utils');

const here = dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(
  readFileSync(join(here, 'node_modules/@taquito/local-forging/package.json'), 'utf8'),
).version;

const fill = (n, b) => new Uint8Array(n).fill(b);
const hex = (n, b) => Buffer.from(fill(n, b)).toString('hex');
const enc = (n, b, p) => b58Encode(fill(n, b), p);

const BRANCH = 'BLockGenesisGenesisGenesisGenesisGenesisf79b5d1CoW2';
const TZ1 = enc(20, 0x11, PrefixV2.Ed25519PublicKeyHash);
const TZ2 = enc(20, 0x22, PrefixV2.Secp256k1PublicKeyHash);
const TZ4 = enc(20, 0x44, PrefixV2.BLS12_381PublicKeyHash);
const KT1 = enc(20, 0x55, PrefixV2.ContractHash);
const EDPK = enc(32, 0x66, PrefixV2.Ed25519PublicKey);
const BLPK = enc(48, 0x77, PrefixV2.BLS12_381PublicKey);
const BLSIG = enc(96, 0x88, PrefixV2.BLS12_381Signature);
const SR1 = enc(20, 0xbb, PrefixV2.SmartRollupHash);
const SRC1 = enc(32, 0xcc, PrefixV2.SmartRollupCommitmentHash);
const SH = enc(48, 0xdd, PrefixV2.SlotHeader);

const mgr = (kind, counter, extra) => ({
  kind,
  source: TZ1,
  fee: '1000',
  counter: String(counter),
  gas_limit: '10000',
  storage_limit: '300',
  ...extra,
});

// [label, contents]: the kinds palisade decodes since it decodes every operation,
// plus a tz4 reveal (its proof is a dynamic_size field).
const examples = [
  ['reveal/tz4+proof', mgr('reveal', 1, { public_key: BLPK, proof: BLSIG })],
  ['register_global_constant', mgr('register_global_constant', 5, { value: { prim: 'Unit' } })],
  ['set_deposits_limit/with', mgr('set_deposits_limit', 6, { limit: '1000000' })],
  ['set_deposits_limit/without', mgr('set_deposits_limit', 6, {})],
  ['increase_paid_storage/10', mgr('increase_paid_storage', 7, { amount: '10', destination: KT1 })],
  ['update_consensus_key/edpk', mgr('update_consensus_key', 8, { pk: EDPK })],
  ['update_consensus_key/tz4+proof', mgr('update_consensus_key', 8, { pk: BLPK, proof: BLSIG })],
  ['update_companion_key/tz4+proof', mgr('update_companion_key', 9, { pk: BLPK, proof: BLSIG })],
  [
    'transfer_ticket',
    mgr('transfer_ticket', 10, {
      ticket_contents: { string: 'foobar' },
      ticket_ty: { prim: 'string' },
      ticket_ticketer: KT1,
      ticket_amount: '2',
      destination: TZ2,
      entrypoint: 'default',
    }),
  ],
  [
    'smart_rollup_originate',
    mgr('smart_rollup_originate', 11, {
      pvm_kind: 'wasm_2_0_0',
      kernel: hex(8, 0x23),
      parameters_ty: { prim: 'bytes' },
      whitelist: [TZ1, TZ4],
    }),
  ],
  [
    'smart_rollup_originate/no_whitelist',
    mgr('smart_rollup_originate', 11, { pvm_kind: 'riscv', kernel: hex(4, 0x24), parameters_ty: { prim: 'unit' } }),
  ],
  ['smart_rollup_add_messages', mgr('smart_rollup_add_messages', 12, { message: [hex(3, 0x31), hex(2, 0x32)] })],
  [
    'smart_rollup_execute_outbox_message',
    mgr('smart_rollup_execute_outbox_message', 13, { rollup: SR1, cemented_commitment: SRC1, output_proof: hex(5, 0x41) }),
  ],
  [
    'dal_publish_commitment',
    mgr('dal_publish_commitment', 14, { slot_header: { slot_index: 3, commitment: SH, commitment_proof: hex(96, 0x51) } }),
  ],
  ['drain_delegate', { kind: 'drain_delegate', consensus_key: TZ4, delegate: TZ1, destination: TZ2 }],
  ['failing_noop', { kind: 'failing_noop', arbitrary: hex(6, 0x61) }],
  ['seed_nonce_revelation', { kind: 'seed_nonce_revelation', level: 1234, nonce: hex(32, 0x71) }],
  ['activate_account', { kind: 'activate_account', pkh: TZ1, secret: hex(20, 0x12) }],
];

function fail(msg) {
  process.stderr.write(`tezos_forge: ${msg}\n`);
  process.exit(1);
}

// The forger ignores its protocol argument in this version; pass the newest non-alpha one.
const protocols = Object.keys(ProtocolsHash).filter((k) => k !== 'ProtoALpha');
const forger = new LocalForger(ProtocolsHash[protocols[protocols.length - 1]]);
const forged = [];
for (const [label, contents] of examples) {
  let forged_hex;
  try {
    forged_hex = await forger.forge({ branch: BRANCH, contents: [contents] });
  } catch (e) {
    fail(`${label}: cannot forge: ${e && e.message ? e.message : e}`);
  }
  const back = await forger.parse(forged_hex).catch((e) => fail(`${label}: cannot parse back: ${e.message}`));
  if (!back || back.contents.length !== 1 || back.contents[0].kind !== contents.kind) {
    fail(`${label}: parsed back as ${JSON.stringify(back)}`);
  }
  forged.push({ label, kind: contents.kind, forged_hex });
}
process.stdout.write(JSON.stringify({ taquito_local_forging: version, branch: BRANCH, forged }) + '\n');
