//! Fuzz target: Tezos base58check (`chain::tezos::base58`).
//!
//! The input's first byte picks the mode.
//!
//! - Bytes (`mode` even): the next byte picks a [`Prefix`], the bytes after it are the raw
//!   value (cut or zero-padded to the prefix's length). Invariants: `encode` starts with the
//!   prefix's readable text; `decode(encode(x)) == x`; `decode_any` over every prefix finds
//!   a prefix with the same bytes and length and the same raw value; chain ids round-trip.
//! - Text (`mode` odd): the rest, as UTF-8, is a candidate string `s`. Invariants: for every
//!   prefix that accepts `s`, `encode(decode(s)) == s` and the raw length is the prefix's;
//!   `decode_any` agrees with `decode`; errors never quote the input (their only text is prefix names).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::chain::tezos::base58::{self, Prefix};

/// Longest text decoded: base58 decoding is quadratic in the length. Only the tz5 (ML-DSA-44)
/// values are longer (1,802 to 5,332 characters); bytes mode covers their prefixes.
const MAX_TEXT: usize = 300;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        bytes_mode(rest);
    } else {
        text_mode(rest);
    }
});

fn bytes_mode(rest: &[u8]) {
    let Some((&pick, raw_in)) = rest.split_first() else {
        return;
    };
    let prefix = Prefix::ALL[usize::from(pick) % Prefix::ALL.len()];
    let mut raw = raw_in.to_vec();
    raw.resize(prefix.raw_len(), 0);
    let s = base58::encode(prefix, &raw);
    assert!(
        s.starts_with(prefix.text()),
        "{prefix:?} encodes to {s}, not starting with {}",
        prefix.text()
    );
    assert_eq!(base58::decode(prefix, &s).as_deref(), Ok(&raw[..]));
    let (found, found_raw) = base58::decode_any(&s, &Prefix::ALL).expect("decode_any");
    assert_eq!(found.bytes(), prefix.bytes());
    assert_eq!(found.raw_len(), prefix.raw_len());
    assert_eq!(found_raw, raw);
    // A one-character change is refused (checksum) or decodes to another value.
    let mut changed: Vec<char> = s.chars().collect();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == '2' { '3' } else { '2' };
    let changed: String = changed.into_iter().collect();
    if let Ok(other) = base58::decode(prefix, &changed) {
        assert_ne!(other, raw, "two strings decode to one value");
    }
    let chain_id: [u8; 4] = [
        raw[0],
        raw[1 % raw.len()],
        raw[2 % raw.len()],
        raw[3 % raw.len()],
    ];
    let net = base58::encode_chain_id(chain_id);
    assert!(net.starts_with("Net"));
    assert_eq!(base58::decode_chain_id(&net), Ok(chain_id));
}

fn text_mode(rest: &[u8]) {
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    if s.len() > MAX_TEXT {
        return;
    }
    let mut accepted = Vec::new();
    for prefix in Prefix::ALL {
        match base58::decode(prefix, s) {
            Ok(raw) => {
                assert_eq!(raw.len(), prefix.raw_len());
                assert_eq!(base58::encode(prefix, &raw), s, "encode(decode(s)) != s");
                accepted.push((prefix, raw));
            }
            Err(e) => check_error(&e),
        }
    }
    match base58::decode_any(s, &Prefix::ALL) {
        Ok((prefix, raw)) => {
            assert!(
                accepted.iter().any(|(p, r)| *p == prefix && *r == raw),
                "decode_any accepts {prefix:?} where decode refuses"
            );
            assert_eq!(base58::encode(prefix, &raw), s);
        }
        Err(e) => {
            check_error(&e);
            assert!(
                accepted.is_empty(),
                "decode_any refuses ({e}) what decode accepts"
            );
        }
    }
    if let Ok(id) = base58::decode_chain_id(s) {
        assert_eq!(base58::encode_chain_id(id), s);
    }
}

/// Errors carry no part of the input: their only text field, `WrongPrefix::expected`, is
/// made of prefix texts (`tz1|tz2|…`), and a `WrongLength` names a prefix text.
fn check_error(e: &base58::Base58Error) {
    let texts: Vec<&str> = Prefix::ALL.iter().map(|p| p.text()).collect();
    match e {
        base58::Base58Error::WrongPrefix { expected } => {
            for part in expected.split('|') {
                assert!(texts.contains(&part), "error text `{part}` is not a prefix");
            }
        }
        base58::Base58Error::WrongLength { prefix, .. } => {
            assert!(texts.contains(prefix), "error names `{prefix}`");
        }
        _ => {}
    }
}
