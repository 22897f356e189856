//! Test vectors shared by the unit tests of this module
//! (`tests/vectors/tezos/`).

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/tezos/vectors.json"
);
pub(super) const PAYLOADS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/tezos/tenderbake_payloads.json"
);

pub(super) fn load(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub(super) fn vectors() -> Vec<serde_json::Value> {
    load(VECTORS)["vectors"].as_array().unwrap().clone()
}

pub(super) fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} missing"))
}
