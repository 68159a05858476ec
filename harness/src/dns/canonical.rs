//! The canonical order of owner names (RFC 4034 §6.1) as plain bytes, for map keys.
//!
//! Why: comparing two hickory `Name`s walks their labels from the right, lowercasing as it
//! goes; a 50k-record zone spent a quarter of its load doing that inside `BTreeMap` searches.
//! The key is computed once per insert or lookup and then compares as a byte string.

use hickory_proto::rr::Name;

/// A name's canonical sort key: its labels from the root down, each lowercased (RFC 4034
/// §6.2) and ended by `00 00`, with a zero octet inside a label written `00 01`. Byte order of
/// keys is then canonical name order: a label that ends first sorts first, and an ancestor
/// (a prefix of the key) sorts before its descendants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CanonicalKey(Vec<u8>);

impl CanonicalKey {
    pub(crate) fn of(name: &Name) -> Self {
        let mut out = Vec::with_capacity(name.len() + name.num_labels() as usize * 2 + 2);
        for label in name.iter().rev() {
            for &b in label {
                match b.to_ascii_lowercase() {
                    0 => out.extend_from_slice(&[0, 1]),
                    b => out.push(b),
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Self(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4034 §6.1's example, in canonical order, plus names that differ in case, in a zero
    /// octet and in label length; the keys sort as hickory's canonical comparison does.
    #[test]
    fn keys_sort_in_canonical_name_order() {
        // Labels as bytes: `\001`, `\200` and zero octets are not ASCII names.
        let name = |labels: &[&[u8]]| Name::from_labels(labels.iter().map(|l| l.to_vec())).unwrap();
        let mut names: Vec<Name> = vec![
            name(&[b"example"]),
            name(&[b"a", b"example"]),
            name(&[b"yljkjljk", b"a", b"example"]),
            name(&[b"Z", b"a", b"example"]),
            name(&[b"zABC", b"a", b"EXAMPLE"]),
            name(&[b"z", b"example"]),
            name(&[b"\x01", b"z", b"example"]),
            name(&[b"*", b"z", b"example"]),
            name(&[b"\xc8", b"z", b"example"]),
            name(&[b"a\x00", b"example"]),
            name(&[b"a\x00b", b"example"]),
            name(&[b"ab", b"example"]),
            name(&[b"b\x00", b"example"]),
        ];
        names.push(Name::root());
        let mut by_key = names.clone();
        by_key.sort_by_key(CanonicalKey::of);
        let mut by_name = names.clone();
        by_name.sort();
        assert_eq!(by_key, by_name);
        assert_eq!(by_key[0], Name::root());
        assert_eq!(
            CanonicalKey::of(&Name::from_ascii("Z.A.example.").unwrap()),
            CanonicalKey::of(&Name::from_ascii("z.a.EXAMPLE.").unwrap())
        );
        // RFC 4034 §6.1's own order for its example names.
        let rfc: Vec<String> = by_key[1..9].iter().map(|n| n.to_string()).collect();
        assert_eq!(rfc[0], "example.");
        assert_eq!(rfc[1], "a.example.");
    }
}
