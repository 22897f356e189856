//! Tezos, pure: base58check encodings, signing-request payloads parsed by fixed offsets,
//! operation kinds for policy, per-key policy and the authentication message.

pub mod base58;
pub mod operations;
pub mod payload;
pub mod policy;
pub mod signer_messages;

/// The bytes an authorized client signs to authenticate a signing request, as octez-client
/// builds them (`Signer_messages.Sign.Request.to_sign`): `0x04 || 0x01 (sign request tag) ||
/// pkh (21 bytes: curve tag byte + 20-byte hash) || data`, where data is the request body's
/// bytes (magic byte first).
pub fn authentication_message(pkh: &[u8; 21], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + pkh.len() + data.len());
    out.extend_from_slice(&[0x04, 0x01]);
    out.extend_from_slice(pkh);
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn authentication_message_layout() {
        let mut pkh = [7u8; 21];
        pkh[0] = 1;
        let m = super::authentication_message(&pkh, &[0x13, 0xaa]);
        assert_eq!(m.len(), 2 + 21 + 2);
        assert_eq!(&m[..2], &[0x04, 0x01]);
        assert_eq!(&m[2..23], &pkh);
        assert_eq!(&m[23..], &[0x13, 0xaa]);
    }
}
