#!/usr/bin/env node
// Independent eth2 client check for palisade's Web3Signer-compatible API.
//
// What it checks: every signature palisade returns on /api/v1/eth2/sign/{pubkey}
// is a valid BLS signature over the signing root that an *independent*
// implementation of the consensus specs computes for the same request. The
// signing roots here come from Lodestar's SSZ type definitions (@lodestar/types,
// hashed by @chainsafe/ssz), Lodestar's domain constants (@lodestar/params) and
// mainnet fork schedule (@lodestar/config), and signatures are verified with
// @chainsafe/blst. None of palisade's Rust code is involved, so a mistake in
// palisade's SSZ, domain or fork selection shows up as "signature does not verify".
//
// Usage:
//   node eth2_random.mjs --url http://127.0.0.1:PORT [--count 260] [--seed 42]
//        [--concurrency 8] [--genesis-fork-version 0x00000000]
//        [--fork-epoch-step N] [--fork-version-tag XX] [--write-config FILE.yaml]
// The preset is Lodestar's: LODESTAR_PRESET=minimal selects the minimal preset's SSZ
// types and SLOTS_PER_EPOCH, and the minimal chain config's fork versions. The fork
// schedule is the chain config's, or every fork N epochs after the previous one with
// --fork-epoch-step N (the default under the minimal preset, whose config schedules no
// fork after Altair); --fork-version-tag XX replaces the last byte of every fork version
// (a network of its own); --write-config writes that schedule as a consensus-spec
// config.yaml (PRESET_BASE, fork versions and epochs) for the signer under test.
//   node eth2_random.mjs --self-check web3signer_openapi_examples.json
//        [--genesis-fork-version 0x00000001]
// The self-check recomputes the signing roots of the published Web3Signer
// examples (proving the root code below) and verifies their signatures.

import {readFileSync, writeFileSync} from "node:fs";
import {pathToFileURL} from "node:url";
import {ssz} from "@lodestar/types";
import * as params from "@lodestar/params";
import {mainnetChainConfig, minimalChainConfig} from "@lodestar/config/configs";
import {
  BitArray,
  BitListType,
  BitVectorType,
  BooleanType,
  ByteListType,
  ByteVectorType,
  ContainerType,
  ListBasicType,
  ListCompositeType,
  UintBigintType,
  UintNumberType,
  VectorBasicType,
  VectorCompositeType,
} from "@chainsafe/ssz";
import {PublicKey, SecretKey, Signature, verify} from "@chainsafe/blst";

// ---------------------------------------------------------------- CLI

function parseArgs(argv) {
  const out = {
    url: null,
    count: 260,
    seed: 42,
    concurrency: 8,
    selfCheck: null,
    genesisForkVersion: null,
    forkEpochStep: null,
    forkVersionTag: null,
    writeConfig: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === "--url") out.url = next().replace(/\/+$/, "");
    else if (a === "--count") out.count = Number(next());
    else if (a === "--seed") out.seed = Number(next());
    else if (a === "--concurrency") out.concurrency = Number(next());
    else if (a === "--self-check") out.selfCheck = next();
    else if (a === "--genesis-fork-version") out.genesisForkVersion = next();
    else if (a === "--fork-epoch-step") out.forkEpochStep = Number(next());
    else if (a === "--fork-version-tag") out.forkVersionTag = next();
    else if (a === "--write-config") out.writeConfig = next();
    else usage(`unknown argument ${a}`);
  }
  if (!out.url && !out.selfCheck && !out.writeConfig) usage("need --url, --self-check or --write-config");
  if (out.forkEpochStep !== null && !(Number.isSafeInteger(out.forkEpochStep) && out.forkEpochStep > 0)) usage("bad --fork-epoch-step");
  if (out.forkVersionTag !== null && !/^[0-9a-fA-F]{2}$/.test(out.forkVersionTag)) usage("bad --fork-version-tag (two hex digits)");
  for (const k of ["count", "seed", "concurrency"]) {
    if (!Number.isSafeInteger(out[k]) || out[k] < 0) usage(`bad --${k}`);
  }
  return out;
}

function usage(msg) {
  console.error(`eth2_random.mjs: ${msg}`);
  console.error("usage: node eth2_random.mjs --url URL [--count N] [--seed S] [--concurrency C] [--genesis-fork-version 0x..]");
  console.error("       node eth2_random.mjs --self-check FILE.json [--genesis-fork-version 0x..]");
  process.exit(2);
}

// ---------------------------------------------------------------- hex helpers

const toHex = (b) => "0x" + Buffer.from(b).toString("hex");
function fromHex(s, len) {
  if (typeof s !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(s)) throw Error(`bad hex: ${s}`);
  const b = new Uint8Array(Buffer.from(s.slice(2), "hex"));
  if (len !== undefined && b.length !== len) throw Error(`expected ${len} bytes: ${s}`);
  return b;
}
const concat = (...parts) => new Uint8Array(Buffer.concat(parts));

// ---------------------------------------------------------------- SSZ types
// Lodestar's types keep most uint64 fields as JS numbers, which lose precision
// above 2^53 (Web3Signer's own examples use such values). `big()` rebuilds a
// type tree with every uint64 as a bigint; field order, names and JSON casing
// stay Lodestar's, so the hash tree roots are unchanged.

const bigCache = new Map();
function big(type) {
  if (bigCache.has(type)) return bigCache.get(type);
  let t = type;
  if (type instanceof UintNumberType && type.byteLength === 8) t = new UintBigintType(8);
  else if (type instanceof ContainerType) {
    const fields = {};
    for (const [name, ft] of Object.entries(type.fields)) fields[name] = big(ft);
    t = new ContainerType(fields, type.opts);
  } else if (type instanceof ListCompositeType) t = new ListCompositeType(big(type.elementType), type.limit);
  else if (type instanceof VectorCompositeType) t = new VectorCompositeType(big(type.elementType), type.length);
  else if (type instanceof ListBasicType) t = new ListBasicType(big(type.elementType), type.limit);
  else if (type instanceof VectorBasicType) t = new VectorBasicType(big(type.elementType), type.length);
  bigCache.set(type, t);
  return t;
}

const T = {
  Uint64: new UintBigintType(8),
  ForkData: big(ssz.phase0.ForkData),
  SigningData: big(ssz.phase0.SigningData),
  BeaconBlockHeader: big(ssz.phase0.BeaconBlockHeader),
  AttestationData: big(ssz.phase0.AttestationData),
  DepositMessage: big(ssz.phase0.DepositMessage),
  VoluntaryExit: big(ssz.phase0.VoluntaryExit),
  AggregateAndProofPhase0: big(ssz.phase0.AggregateAndProof),
  AggregateAndProofElectra: big(ssz.electra.AggregateAndProof),
  SyncAggregatorSelectionData: big(ssz.altair.SyncAggregatorSelectionData),
  ContributionAndProof: big(ssz.altair.ContributionAndProof),
  ValidatorRegistrationV1: big(ssz.bellatrix.ValidatorRegistrationV1),
  beaconBlock: (fork) => big(ssz[fork.toLowerCase()].BeaconBlock),
};

// ---------------------------------------------------------------- forks & domains

const SLOTS_PER_EPOCH = BigInt(params.SLOTS_PER_EPOCH);
const ZERO_ROOT = new Uint8Array(32);
const PRESET = params.ACTIVE_PRESET;
const cfg = PRESET === "minimal" ? minimalChainConfig : mainnetChainConfig;
const FORK_NAMES = ["ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"];

// The fork schedule (only forks that are scheduled), oldest first; see setSchedule.
let FORKS = [];
let ALL_VERSIONS = [];
let LAST_EPOCH = 0n;

// Sets the schedule: the chain config's, or every fork `step` epochs after the previous
// one; `tag` (a byte) replaces the last byte of every fork version.
function setSchedule(step, tag) {
  const version = (v) => {
    const out = Uint8Array.from(v);
    if (tag !== null) out[3] = tag;
    return out;
  };
  FORKS = [{name: "PHASE0", version: version(cfg.GENESIS_FORK_VERSION), epoch: 0n}];
  FORK_NAMES.forEach((name, i) => {
    const epoch = step !== null ? (i + 1) * step : cfg[`${name}_FORK_EPOCH`];
    if (Number.isFinite(epoch)) FORKS.push({name, version: version(cfg[`${name}_FORK_VERSION`]), epoch: BigInt(epoch)});
  });
  ALL_VERSIONS = FORKS.map((f) => f.name);
  LAST_EPOCH = forkEnd(FORKS[FORKS.length - 1].name);
}

// The schedule as a consensus-spec config.yaml.
function configYaml() {
  const lines = [`CONFIG_NAME: 'eth2-random-${PRESET}'`, `PRESET_BASE: '${PRESET}'`, `GENESIS_FORK_VERSION: ${toHex(FORKS[0].version)}`];
  for (const f of FORKS.slice(1)) lines.push(`${f.name}_FORK_VERSION: ${toHex(f.version)}`, `${f.name}_FORK_EPOCH: ${f.epoch}`);
  return lines.join("\n") + "\n";
}
const forkIndex = (name) => FORKS.findIndex((f) => f.name === name);
const forkIndexAt = (epoch) => FORKS.findLastIndex((f) => f.epoch <= epoch);
// first epoch of the fork after `name` (or an arbitrary horizon for the last one)
const forkEnd = (name) => {
  const i = forkIndex(name);
  return i + 1 < FORKS.length ? FORKS[i + 1].epoch : FORKS[i].epoch + 100000n;
};

// fork_info (Web3Signer JSON) for a message at `epoch` on mainnet.
function forkInfoAt(epoch, gvr) {
  const i = forkIndexAt(epoch);
  return {
    fork: {
      previous_version: toHex(FORKS[Math.max(i - 1, 0)].version),
      current_version: toHex(FORKS[i].version),
      epoch: FORKS[i].epoch.toString(),
    },
    genesis_validators_root: toHex(gvr),
  };
}

// compute_domain(domain_type, fork_version, genesis_validators_root)
function computeDomain(domainType, forkVersion, gvr) {
  const forkDataRoot = T.ForkData.hashTreeRoot({currentVersion: forkVersion, genesisValidatorsRoot: gvr});
  return concat(domainType, forkDataRoot.subarray(0, 28));
}

// get_domain() using the request's fork_info (accepts snake_case and camelCase).
function domainFromForkInfo(domainType, forkInfo, epoch) {
  if (!forkInfo || !forkInfo.fork) throw Error("missing fork_info");
  const f = forkInfo.fork;
  const prev = fromHex(f.previous_version ?? f.previousVersion, 4);
  const cur = fromHex(f.current_version ?? f.currentVersion, 4);
  const version = BigInt(epoch) < BigInt(f.epoch) ? prev : cur;
  return computeDomain(domainType, version, gvrOf(forkInfo));
}
const gvrOf = (fi) => fromHex(fi.genesis_validators_root ?? fi.genesisValidatorsRoot, 32);

const computeSigningRoot = (objectRoot, domain) => T.SigningData.hashTreeRoot({objectRoot, domain});
const epochOfSlot = (slot) => BigInt(slot) / SLOTS_PER_EPOCH;

// Versions whose aggregate uses the Electra AggregateAndProof (committee_bits).
const ELECTRA_AGGREGATE = new Set(["ELECTRA", "FULU", "GLOAS"]);

// ---------------------------------------------------------------- signing roots
// The signing root of a Web3Signer eth2 sign request body, computed from the
// consensus specs. `genesisForkVersion` is the network's GENESIS_FORK_VERSION
// (used for VALIDATOR_REGISTRATION only).

function requestSigningRoot(body, {genesisForkVersion}) {
  const fi = body.fork_info ?? body.forkInfo;
  const withForkInfo = (domainType, objectRoot, epoch) =>
    computeSigningRoot(objectRoot, domainFromForkInfo(domainType, fi, epoch));

  switch (body.type) {
    case "BLOCK": {
      const block = T.beaconBlock("PHASE0").fromJson(body.block);
      return withForkInfo(params.DOMAIN_BEACON_PROPOSER, T.beaconBlock("PHASE0").hashTreeRoot(block), epochOfSlot(block.slot));
    }
    case "BLOCK_V2": {
      const bb = body.beacon_block;
      const version = String(bb.version).toUpperCase();
      if (bb.block_header) {
        const h = T.BeaconBlockHeader.fromJson(bb.block_header);
        return withForkInfo(params.DOMAIN_BEACON_PROPOSER, T.BeaconBlockHeader.hashTreeRoot(h), epochOfSlot(h.slot));
      }
      const type = T.beaconBlock(version);
      const block = type.fromJson(bb.block);
      return withForkInfo(params.DOMAIN_BEACON_PROPOSER, type.hashTreeRoot(block), epochOfSlot(block.slot));
    }
    case "ATTESTATION": {
      const data = T.AttestationData.fromJson(body.attestation);
      return withForkInfo(params.DOMAIN_BEACON_ATTESTER, T.AttestationData.hashTreeRoot(data), data.target.epoch);
    }
    case "AGGREGATION_SLOT": {
      const slot = T.Uint64.fromJson(body.aggregation_slot.slot);
      return withForkInfo(params.DOMAIN_SELECTION_PROOF, T.Uint64.hashTreeRoot(slot), epochOfSlot(slot));
    }
    case "AGGREGATE_AND_PROOF":
    case "AGGREGATE_AND_PROOF_V2": {
      let type = T.AggregateAndProofPhase0;
      let json = body.aggregate_and_proof;
      if (body.type === "AGGREGATE_AND_PROOF_V2") {
        if (ELECTRA_AGGREGATE.has(String(json.version).toUpperCase())) type = T.AggregateAndProofElectra;
        json = json.data;
      }
      const ap = type.fromJson(json);
      return withForkInfo(params.DOMAIN_AGGREGATE_AND_PROOF, type.hashTreeRoot(ap), ap.aggregate.data.target.epoch);
    }
    case "DEPOSIT": {
      const d = body.deposit;
      const msg = T.DepositMessage.fromJson({pubkey: d.pubkey, withdrawal_credentials: d.withdrawal_credentials, amount: d.amount});
      const domain = computeDomain(params.DOMAIN_DEPOSIT, fromHex(d.genesis_fork_version, 4), ZERO_ROOT);
      return computeSigningRoot(T.DepositMessage.hashTreeRoot(msg), domain);
    }
    case "RANDAO_REVEAL": {
      const epoch = T.Uint64.fromJson(body.randao_reveal.epoch);
      return withForkInfo(params.DOMAIN_RANDAO, T.Uint64.hashTreeRoot(epoch), epoch);
    }
    case "VOLUNTARY_EXIT": {
      const exit = T.VoluntaryExit.fromJson(body.voluntary_exit);
      const root = T.VoluntaryExit.hashTreeRoot(exit);
      // EIP-7044: from Deneb on, exits are signed with the Capella fork version.
      if (exit.epoch >= FORKS[forkIndex("DENEB")].epoch) {
        const domain = computeDomain(params.DOMAIN_VOLUNTARY_EXIT, FORKS[forkIndex("CAPELLA")].version, gvrOf(fi));
        return computeSigningRoot(root, domain);
      }
      return withForkInfo(params.DOMAIN_VOLUNTARY_EXIT, root, exit.epoch);
    }
    case "SYNC_COMMITTEE_MESSAGE": {
      const m = body.sync_committee_message;
      // the object signed is the block root itself (a Root's hash tree root is itself)
      return withForkInfo(params.DOMAIN_SYNC_COMMITTEE, fromHex(m.beacon_block_root, 32), epochOfSlot(T.Uint64.fromJson(m.slot)));
    }
    case "SYNC_COMMITTEE_SELECTION_PROOF": {
      const sel = T.SyncAggregatorSelectionData.fromJson(body.sync_aggregator_selection_data);
      return withForkInfo(params.DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, T.SyncAggregatorSelectionData.hashTreeRoot(sel), epochOfSlot(sel.slot));
    }
    case "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF": {
      const cp = T.ContributionAndProof.fromJson(body.contribution_and_proof);
      return withForkInfo(params.DOMAIN_CONTRIBUTION_AND_PROOF, T.ContributionAndProof.hashTreeRoot(cp), epochOfSlot(cp.contribution.slot));
    }
    case "VALIDATOR_REGISTRATION": {
      const reg = T.ValidatorRegistrationV1.fromJson(body.validator_registration);
      const domain = computeDomain(params.DOMAIN_APPLICATION_BUILDER, genesisForkVersion, ZERO_ROOT);
      return computeSigningRoot(T.ValidatorRegistrationV1.hashTreeRoot(reg), domain);
    }
    default:
      throw Error(`unknown type ${body.type}`);
  }
}

function verifySignature(root, pubkeyHex, sigHex) {
  try {
    return verify(root, PublicKey.fromBytes(fromHex(pubkeyHex, 48)), Signature.fromBytes(fromHex(sigHex, 96)), true, true);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- deterministic randomness
// splitmix64: tiny, seedable, good enough for test data.

function makeRng(seed) {
  const M = (1n << 64n) - 1n;
  let s = BigInt(seed) & M;
  const u64 = () => {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    return z ^ (z >> 31n);
  };
  const rng = {
    u64,
    int: (n) => Number(u64() % BigInt(n)), // [0, n)
    range: (lo, hi) => lo + (u64() % (hi - lo)), // bigint [lo, hi)
    bool: () => (u64() & 1n) === 1n,
    bytes: (n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i += 8) {
        let x = u64();
        for (let j = i; j < Math.min(i + 8, n); j++, x >>= 8n) b[j] = Number(x & 0xffn);
      }
      return b;
    },
    pick: (arr) => arr[rng.int(arr.length)],
    // uint64 of varied magnitude: small, 32-bit, or full 64-bit
    anyU64: () => [u64() % 1000n, u64() % (1n << 32n), u64()][rng.int(3)],
    shuffle: (arr) => {
      for (let i = arr.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [arr[i], arr[j]] = [arr[j], arr[i]];
      }
      return arr;
    },
  };
  return rng;
}

// ---------------------------------------------------------------- random SSZ values

// Valid BLS points to put into pubkey / signature fields of generated messages
// (a server may decode them; random bytes would not be curve points).
function makeBlsPool(rng) {
  const pubkeys = [];
  const sigs = [];
  for (let i = 0; i < 4; i++) {
    const sk = SecretKey.fromKeygen(rng.bytes(32));
    pubkeys.push(sk.toPublicKey().toBytes());
    sigs.push(sk.sign(rng.bytes(32)).toBytes());
  }
  return {pubkey: () => rng.pick(pubkeys), sig: () => rng.pick(sigs)};
}

// A random value of any (big()-converted) SSZ type; lists are short but non-empty.
function randomValue(type, rng, pool) {
  if (type instanceof UintBigintType) return type.byteLength === 8 ? rng.anyU64() : rng.u64() % (1n << BigInt(8 * type.byteLength));
  if (type instanceof UintNumberType) return rng.int(2 ** (8 * type.byteLength));
  if (type instanceof BooleanType) return rng.bool();
  if (type instanceof ByteVectorType) {
    if (type.lengthBytes === 48) return pool.pubkey();
    if (type.lengthBytes === 96) return pool.sig();
    return rng.bytes(type.lengthBytes);
  }
  if (type instanceof ByteListType) return rng.bytes(rng.int(Math.min(type.limitBytes, 32) + 1));
  if (type instanceof BitListType || type instanceof BitVectorType) {
    const n = type instanceof BitListType ? 1 + rng.int(Math.min(type.limitBits, 128)) : type.lengthBits;
    return BitArray.fromBoolArray(Array.from({length: n}, () => rng.bool()));
  }
  if (type instanceof ListCompositeType || type instanceof ListBasicType) {
    const n = 1 + rng.int(Math.min(type.limit, type instanceof ListBasicType ? 8 : 2));
    return Array.from({length: n}, () => randomValue(type.elementType, rng, pool));
  }
  if (type instanceof VectorCompositeType || type instanceof VectorBasicType) {
    return Array.from({length: type.length}, () => randomValue(type.elementType, rng, pool));
  }
  if (type instanceof ContainerType) {
    const v = {};
    for (const [name, ft] of Object.entries(type.fields)) v[name] = randomValue(ft, rng, pool);
    return v;
  }
  throw Error(`randomValue: unsupported type ${type.typeName}`);
}

// ---------------------------------------------------------------- request generation

const TYPES = [
  "BLOCK",
  "BLOCK_V2",
  "ATTESTATION",
  "AGGREGATION_SLOT",
  "AGGREGATE_AND_PROOF",
  "AGGREGATE_AND_PROOF_V2",
  "DEPOSIT",
  "RANDAO_REVEAL",
  "VOLUNTARY_EXIT",
  "SYNC_COMMITTEE_MESSAGE",
  "SYNC_COMMITTEE_SELECTION_PROOF",
  "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
  "VALIDATOR_REGISTRATION",
];
// at least 10 of each type, and two of each fork version for the *_V2 types
const minPerType = (t) => (t.endsWith("_V2") ? Math.max(10, 2 * ALL_VERSIONS.length) : 10);
const FULL_BLOCK_VERSIONS = new Set(["PHASE0", "ALTAIR"]);

// Per-key bookkeeping so slashing protection never has a reason to refuse:
// distinct block slots, and distinct attestation targets with source = target-1.
class KeyState {
  constructor() {
    this.blockSlots = new Set();
    this.targets = new Set();
  }
  freshSlot(rng, lo, hi) {
    for (;;) {
      const s = rng.range(lo, hi);
      if (!this.blockSlots.has(s)) return this.blockSlots.add(s), s;
    }
  }
  freshTarget(rng, lo, hi) {
    for (;;) {
      const e = rng.range(lo, hi);
      if (!this.targets.has(e)) return this.targets.add(e), e;
    }
  }
}

// Builds one request. Returns {type, variant, pubkey, body, time} where `time`
// (a slot) orders the run like a chain would progress.
function makeRequest(type, variant, pubkey, ks, ctx) {
  const {rng, pool, gvr} = ctx;
  const rv = (t) => randomValue(t, rng, pool);
  const slotIn = (fromEpoch, toEpoch) => rng.range(fromEpoch * SLOTS_PER_EPOCH, toEpoch * SLOTS_PER_EPOCH);
  const attData = (target) => ({
    ...rv(T.AttestationData),
    slot: target * SLOTS_PER_EPOCH + rng.range(0n, SLOTS_PER_EPOCH),
    index: rng.range(0n, 64n),
    source: {epoch: target - 1n, root: rng.bytes(32)},
    target: {epoch: target, root: rng.bytes(32)},
  });
  const fullBlock = (fork, slot) => ({...rv(T.beaconBlock(fork)), slot});
  let body;
  let time;

  switch (type) {
    case "BLOCK": {
      time = ks.freshSlot(rng, 0n, forkEnd("PHASE0") * SLOTS_PER_EPOCH);
      body = {block: T.beaconBlock("PHASE0").toJson(fullBlock("PHASE0", time))};
      break;
    }
    case "BLOCK_V2": {
      const f = FORKS[forkIndex(variant)];
      time = ks.freshSlot(rng, f.epoch * SLOTS_PER_EPOCH, forkEnd(variant) * SLOTS_PER_EPOCH);
      body = {
        beacon_block: FULL_BLOCK_VERSIONS.has(variant)
          ? {version: variant, block: T.beaconBlock(variant).toJson(fullBlock(variant, time))}
          : {version: variant, block_header: T.BeaconBlockHeader.toJson({...rv(T.BeaconBlockHeader), slot: time})},
      };
      break;
    }
    case "ATTESTATION": {
      const target = ks.freshTarget(rng, 1n, LAST_EPOCH);
      const data = attData(target);
      time = data.slot;
      body = {attestation: T.AttestationData.toJson(data)};
      break;
    }
    case "AGGREGATION_SLOT": {
      time = slotIn(0n, LAST_EPOCH);
      body = {aggregation_slot: {slot: time.toString()}};
      break;
    }
    case "AGGREGATE_AND_PROOF":
    case "AGGREGATE_AND_PROOF_V2": {
      // V1 carries a phase0 aggregate, so keep it before Electra.
      const version = type === "AGGREGATE_AND_PROOF" ? "PHASE0" : variant;
      const lo = type === "AGGREGATE_AND_PROOF" ? 1n : FORKS[forkIndex(version)].epoch + 1n;
      const hi = type === "AGGREGATE_AND_PROOF" ? FORKS[forkIndex("ELECTRA")].epoch : forkEnd(version);
      const apType = ELECTRA_AGGREGATE.has(version) ? T.AggregateAndProofElectra : T.AggregateAndProofPhase0;
      const ap = rv(apType);
      ap.aggregate.data = attData(rng.range(lo, hi));
      time = ap.aggregate.data.slot;
      const json = apType.toJson(ap);
      body = {aggregate_and_proof: type === "AGGREGATE_AND_PROOF" ? json : {version, data: json}};
      break;
    }
    case "DEPOSIT": {
      time = 0n;
      body = {
        deposit: {
          pubkey,
          withdrawal_credentials: toHex(concat(new Uint8Array([rng.int(2)]), rng.bytes(31))),
          amount: rng.bool() ? "32000000000" : rng.anyU64().toString(),
          // this network's genesis fork version or any other network's
          genesis_fork_version: rng.bool() ? toHex(FORKS[0].version) : toHex(rng.bytes(4)),
        },
      };
      break;
    }
    case "RANDAO_REVEAL": {
      const epoch = rng.range(0n, LAST_EPOCH);
      time = epoch * SLOTS_PER_EPOCH;
      body = {randao_reveal: {epoch: epoch.toString()}};
      break;
    }
    case "VOLUNTARY_EXIT": {
      // variant PRE_DENEB / POST_DENEB (EIP-7044 domain)
      const deneb = FORKS[forkIndex("DENEB")].epoch;
      const epoch = variant === "PRE_DENEB" ? rng.range(0n, deneb) : rng.range(deneb, LAST_EPOCH);
      time = epoch * SLOTS_PER_EPOCH;
      body = {voluntary_exit: T.VoluntaryExit.toJson({epoch, validatorIndex: rng.anyU64()})};
      break;
    }
    case "SYNC_COMMITTEE_MESSAGE": {
      time = slotIn(FORKS[forkIndex("ALTAIR")].epoch, LAST_EPOCH);
      body = {sync_committee_message: {beacon_block_root: toHex(rng.bytes(32)), slot: time.toString()}};
      break;
    }
    case "SYNC_COMMITTEE_SELECTION_PROOF": {
      time = slotIn(FORKS[forkIndex("ALTAIR")].epoch, LAST_EPOCH);
      const sel = {slot: time, subcommitteeIndex: rng.range(0n, BigInt(params.SYNC_COMMITTEE_SUBNET_COUNT))};
      body = {sync_aggregator_selection_data: T.SyncAggregatorSelectionData.toJson(sel)};
      break;
    }
    case "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF": {
      time = slotIn(FORKS[forkIndex("ALTAIR")].epoch, LAST_EPOCH);
      const cp = rv(T.ContributionAndProof);
      cp.contribution.slot = time;
      cp.contribution.subcommitteeIndex = rng.range(0n, BigInt(params.SYNC_COMMITTEE_SUBNET_COUNT));
      body = {contribution_and_proof: T.ContributionAndProof.toJson(cp)};
      break;
    }
    case "VALIDATOR_REGISTRATION": {
      time = 0n;
      const reg = {...rv(T.ValidatorRegistrationV1), pubkey: fromHex(pubkey, 48)};
      reg.gasLimit = rng.bool() ? 30000000n : rng.anyU64();
      reg.timestamp = 1606824023n + rng.range(0n, 200000000n);
      body = {validator_registration: T.ValidatorRegistrationV1.toJson(reg)};
      break;
    }
    default:
      throw Error(`unknown type ${type}`);
  }

  const noForkInfo = type === "DEPOSIT" || type === "VALIDATOR_REGISTRATION";
  const epochForFork = type === "ATTESTATION" ? BigInt(body.attestation.target.epoch) : time / SLOTS_PER_EPOCH;
  body = {type, ...(noForkInfo ? {} : {fork_info: forkInfoAt(epochForFork, gvr)}), ...body};
  return {type, variant, pubkey, body, time};
}

function buildPlan(pubkeys, count, rng) {
  const types = [];
  for (const t of TYPES) for (let i = 0; i < minPerType(t); i++) types.push(t);
  while (types.length < count) types.push(rng.pick(TYPES));
  rng.shuffle(types);
  // spread variants and keys round-robin so every one is covered
  const seen = {};
  return types.map((type, i) => {
    const n = (seen[type] = (seen[type] ?? -1) + 1);
    let variant = null;
    if (type === "BLOCK_V2" || type === "AGGREGATE_AND_PROOF_V2") variant = ALL_VERSIONS[n % ALL_VERSIONS.length];
    if (type === "VOLUNTARY_EXIT") variant = n % 2 ? "POST_DENEB" : "PRE_DENEB";
    return {type, variant, pubkey: pubkeys[i % pubkeys.length]};
  });
}

function generateRequests(pubkeys, count, seed, genesisForkVersion) {
  const rng = makeRng(seed);
  const ctx = {rng, pool: makeBlsPool(rng), gvr: rng.bytes(32)};
  const states = new Map(pubkeys.map((pk) => [pk, new KeyState()]));
  const reqs = buildPlan(pubkeys, count, rng).map((p) => makeRequest(p.type, p.variant, p.pubkey, states.get(p.pubkey), ctx));
  // chain order: per key, block slots and attestation epochs only go up
  reqs.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  for (const r of reqs) {
    r.root = requestSigningRoot(r.body, {genesisForkVersion});
    if (rng.bool()) r.body.signingRoot = toHex(r.root);
  }
  return reqs;
}

// ---------------------------------------------------------------- live run against a server

const PROTECTED = new Set(["BLOCK", "BLOCK_V2", "ATTESTATION"]);

async function runLive(opts) {
  const genesisForkVersion = fromHex(opts.genesisForkVersion ?? toHex(FORKS[0].version), 4);
  let pubkeys;
  try {
    const res = await fetch(`${opts.url}/api/v1/eth2/publicKeys`, {headers: {Accept: "application/json"}, signal: AbortSignal.timeout(30000)});
    const text = await res.text();
    if (res.status !== 200) throw Error(`status ${res.status}: ${text}`);
    pubkeys = JSON.parse(text);
    if (!Array.isArray(pubkeys) || pubkeys.length === 0) throw Error(`no public keys: ${text}`);
    pubkeys = pubkeys.map((pk) => toHex(fromHex(pk, 48)));
  } catch (e) {
    console.log(`FAIL publicKeys: ${e.message}`);
    console.log("eth2-independent-client: 0 passed, 1 failed");
    return 1;
  }

  const reqs = generateRequests(pubkeys, opts.count, opts.seed, genesisForkVersion);
  console.log(`eth2-independent-client: ${pubkeys.length} key(s), ${reqs.length} requests, seed ${opts.seed}, preset ${PRESET}, forks ${FORKS.map((f) => `${f.name}@${f.epoch}`).join(" ")}`);

  let passed = 0;
  let failed = 0;
  const perType = {};
  // Slashing-protected requests of one key go out one after the other, in order.
  const chains = new Map();
  let next = 0;

  async function one(r) {
    const label = `${r.type}${r.variant ? `(${r.variant})` : ""} key=${r.pubkey.slice(0, 12)}…`;
    try {
      const res = await fetch(`${opts.url}/api/v1/eth2/sign/${r.pubkey}`, {
        method: "POST",
        headers: {"Content-Type": "application/json", Accept: "application/json"},
        body: JSON.stringify(r.body),
        signal: AbortSignal.timeout(60000),
      });
      const text = await res.text();
      if (res.status !== 200) return `FAIL ${label} status=${res.status} body=${text.slice(0, 500)}`;
      let sig;
      try {
        sig = JSON.parse(text).signature;
      } catch {
        return `FAIL ${label} status=200 body is not JSON: ${text.slice(0, 500)}`;
      }
      if (typeof sig !== "string" || !/^0x[0-9a-fA-F]{192}$/.test(sig)) return `FAIL ${label} status=200 bad signature field: ${text.slice(0, 500)}`;
      if (!verifySignature(r.root, r.pubkey, sig)) return `FAIL ${label} signature does not verify (root ${toHex(r.root)}) body=${JSON.stringify(r.body).slice(0, 4000)}`;
      return null;
    } catch (e) {
      return `FAIL ${label} request error: ${e.message}`;
    }
  }

  async function worker() {
    while (next < reqs.length) {
      const r = reqs[next++];
      let release = () => {};
      let prev = Promise.resolve();
      if (PROTECTED.has(r.type)) {
        prev = chains.get(r.pubkey) ?? prev;
        chains.set(r.pubkey, new Promise((res) => (release = res)));
      }
      await prev;
      const err = await one(r);
      release();
      const c = (perType[r.type] ??= {passed: 0, failed: 0});
      if (err) {
        console.log(err);
        failed++;
        c.failed++;
      } else {
        passed++;
        c.passed++;
      }
    }
  }
  await Promise.all(Array.from({length: Math.max(1, opts.concurrency)}, worker));

  console.log("per type: " + TYPES.map((t) => `${t}=${perType[t]?.passed ?? 0}/${(perType[t]?.passed ?? 0) + (perType[t]?.failed ?? 0)}`).join(" "));
  console.log(`eth2-independent-client: ${passed} passed, ${failed} failed`);
  return failed === 0 && passed >= opts.count ? 0 : 1;
}

// ---------------------------------------------------------------- self-check

function runSelfCheck(opts) {
  // The vectors' VALIDATOR_REGISTRATION example is signed for the consensus
  // `minimal` config (GENESIS_FORK_VERSION 0x00000001), hence this default.
  const genesisForkVersion = fromHex(opts.genesisForkVersion ?? "0x00000001", 4);
  const file = JSON.parse(readFileSync(opts.selfCheck, "utf8"));
  let passed = 0;
  let failed = 0;
  const fail = (msg) => (console.log(`MISMATCH ${msg}`), failed++);

  for (const c of file.cases) {
    const pubkey = c.pubkey ?? file.pubkey;
    let root;
    try {
      root = toHex(requestSigningRoot(c.request_body, {genesisForkVersion}));
    } catch (e) {
      fail(`${c.name}: cannot compute signing root: ${e.message}`);
      continue;
    }
    let ok = true;
    if (root !== c.expected_signing_root.toLowerCase()) {
      ok = false;
      fail(`${c.name}: signing root ${root}, expected ${c.expected_signing_root}`);
    }
    if (!verifySignature(fromHex(c.expected_signing_root, 32), pubkey, c.expected_signature)) {
      ok = false;
      fail(`${c.name}: expected_signature does not verify against ${pubkey}`);
    }
    if (ok) {
      passed++;
      console.log(`ok ${c.name} ${root}`);
    }
  }

  // Generator sanity: every generated request (all types and versions) has a
  // computable root, JSON round-trips, and full blocks hash like their headers.
  const pk = toHex(SecretKey.fromKeygen(new Uint8Array(32).fill(7)).toPublicKey().toBytes());
  const reqs = generateRequests([pk], 0, 1, genesisForkVersion);
  let genOk = 0;
  for (const r of reqs) {
    const again = toHex(requestSigningRoot(JSON.parse(JSON.stringify(r.body)), {genesisForkVersion}));
    let headerOk = true;
    const bb = r.body.beacon_block ?? (r.type === "BLOCK" ? {version: "PHASE0", block: r.body.block} : null);
    if (bb?.block) {
      const type = T.beaconBlock(bb.version);
      const blk = type.fromJson(bb.block);
      const bodyRoot = type.fields.body.hashTreeRoot(blk.body);
      const hdr = {slot: blk.slot, proposerIndex: blk.proposerIndex, parentRoot: blk.parentRoot, stateRoot: blk.stateRoot, bodyRoot};
      headerOk = toHex(T.BeaconBlockHeader.hashTreeRoot(hdr)) === toHex(type.hashTreeRoot(blk));
    }
    if (again === toHex(r.root) && headerOk) genOk++;
    else fail(`generated ${r.type}(${r.variant}): root not stable or header mismatch`);
  }
  console.log(`generator: ${genOk}/${reqs.length} generated requests consistent`);
  console.log(`eth2-self-check: ${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

// ---------------------------------------------------------------- main

// Exported for ad-hoc tooling; runs only when invoked as a script.
export {requestSigningRoot, generateRequests};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = parseArgs(process.argv.slice(2));
  const step = opts.forkEpochStep ?? (PRESET === "minimal" ? 4 : null);
  setSchedule(step, opts.forkVersionTag === null ? null : parseInt(opts.forkVersionTag, 16));
  if (opts.writeConfig) writeFileSync(opts.writeConfig, configYaml());
  process.exitCode = opts.selfCheck ? runSelfCheck(opts) : opts.url ? await runLive(opts) : 0;
} else {
  setSchedule(null, null);
}
