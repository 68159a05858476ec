use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

use super::error::RecordLineError;
use super::zone::{NS_HOST, normalise_origin};
use std::sync::Arc;

/// Check one record line in isolation, so that the scenario loader can point at file:line:col.
///
/// Accepts exactly what [`super::SignedWorld::build`] accepts for one line of a zone with this
/// origin and default TTL (the world-level checks, such as data below a child zone, come later).
///
/// The result can be handed back with the line (`ZoneSpec::parsed`), so that a large zone is
/// parsed once, not again by each later check and by the build.
pub fn parse_record_line(origin: &str, default_ttl: u32, line: &str) -> Result<ParsedLine, RecordLineError> {
    let origin = normalise_origin(origin)
        .map_err(|m| RecordLineError::new(0, format!("invalid zone origin `{origin}`: {m}")))?;
    parse_line(&origin, default_ttl, line).map(|p| ParsedLine(Arc::new(p.record)))
}

/// One record line as [`parse_record_line`] read it, for the zone of that origin and default
/// TTL only (the line alone does not say them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine(Arc<Record>);

impl ParsedLine {
    pub(crate) fn record(&self) -> &Record {
        &self.0
    }
}

/// One parsed record line; the owner name is lowercased.
#[derive(Debug)]
pub(crate) struct ParsedRecord {
    pub record: Record,
}

/// One token of a record line and its byte offset.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    start: usize,
    text: &'a str,
}

/// Parse one record line against `origin`.
///
/// hickory's zone-file parser decides what is valid; our own light tokenizer runs first, only
/// to find the column of the offending token (hickory's errors carry no position).
pub(crate) fn parse_line(origin: &Name, default_ttl: u32, line: &str) -> Result<ParsedRecord, RecordLineError> {
    let toks = lex(line)?;
    let Some(first) = toks.first() else {
        return Err(RecordLineError::new(0, "empty record"));
    };
    if first.text.starts_with('$') {
        return Err(RecordLineError::new(
            first.start,
            "directives ($ORIGIN, $TTL, $INCLUDE) are not allowed: one record per entry",
        ));
    }
    let owner = if first.text == "@" {
        origin.clone()
    } else {
        Name::parse(first.text, Some(origin))
            .map_err(|e| RecordLineError::new(first.start, format!("invalid owner `{}`: {e}", first.text)))?
            .to_lowercase()
    };
    if !origin.zone_of(&owner) {
        return Err(RecordLineError::new(
            first.start,
            format!("owner `{owner}` is outside the zone `{origin}`"),
        ));
    }

    let Some((type_index, rtype)) = find_type(&toks)? else {
        return Err(RecordLineError::new(line.len(), "missing record type"));
    };
    let type_col = toks[type_index].start;
    check_type_allowed(rtype, &owner, origin).map_err(|m| RecordLineError::new(type_col, m))?;
    let rdata = &toks[type_index + 1..];
    check_rdata(rtype, rdata, origin, line.len())?;

    if rtype == RecordType::DNAME {
        return dname_record(owner, default_ttl, &toks[1..type_index], rdata, origin);
    }

    let body = line.trim_start();
    let text = format!("$ORIGIN {origin}\n$TTL {default_ttl}\n{body}\n");
    let rdata_col = rdata.first().map_or(line.len(), |t| t.start);
    let (_, rrsets) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| RecordLineError::new(rdata_col, format!("invalid {rtype} data: {e}")))?;
    let mut records: Vec<Record> = rrsets
        .into_values()
        .flat_map(|rrset| rrset.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect();
    if records.len() != 1 {
        return Err(RecordLineError::new(
            0,
            format!("expected one record, found {}", records.len()),
        ));
    }
    let mut record = records.remove(0);
    record.name = record.name.to_lowercase();
    if record.record_type() != rtype || record.name != owner {
        return Err(RecordLineError::new(
            0,
            format!(
                "expected one `{owner} {rtype}` record, found `{} {}`",
                record.name,
                record.record_type()
            ),
        ));
    }
    check_wire(&record, rdata, rdata_col)?;
    Ok(ParsedRecord { record })
}

/// The limits of the wire form that hickory's zone-file parser does not apply (it accepts
/// both, and the record then fails only when it is signed or served): a
/// `<character-string>` is one length octet and at most 255 octets (RFC 1035 §3.3), and
/// RDLENGTH is 16 bits, so RDATA is at most 65535 octets (RFC 1035 §3.2.1).
fn check_wire(record: &Record, rdata: &[Tok<'_>], rdata_col: usize) -> Result<(), RecordLineError> {
    if let RData::TXT(txt) = &record.data
        && let Some((i, long)) = txt.txt_data.iter().enumerate().find(|(_, s)| s.len() > 255)
    {
        // One token per <character-string>, as the zone-file syntax has it (RFC 1035 §5.1).
        let col = if rdata.len() == txt.txt_data.len() {
            rdata[i].start
        } else {
            rdata_col
        };
        return Err(RecordLineError::new(
            col,
            format!(
                "a TXT <character-string> is at most 255 octets (RFC 1035 §3.3), this one is {}: split it \
                 into several quoted strings",
                long.len()
            ),
        ));
    }
    // hickory's encoder stops at 65535 octets, so an error of that kind is what says "longer".
    match record.data.to_bytes() {
        Ok(_) => Ok(()),
        Err(hickory_proto::ProtoError::MaxBufferSizeExceeded(_)) => Err(RecordLineError::new(
            rdata_col,
            format!(
                "{} data over 65535 octets: RDLENGTH is 16 bits (RFC 1035 §3.2.1)",
                record.record_type()
            ),
        )),
        Err(e) => Err(RecordLineError::new(
            rdata_col,
            format!("{} data has no wire form: {e}", record.record_type()),
        )),
    }
}

/// The type token after the owner: `[TTL] [class] TYPE` in either order, as RFC 1035 §5.1
/// allows; its index and type.
fn find_type(toks: &[Tok<'_>]) -> Result<Option<(usize, RecordType)>, RecordLineError> {
    for (i, t) in toks.iter().enumerate().skip(1) {
        if parse_ttl(t.text).is_ok() {
            continue;
        }
        let upper = t.text.to_ascii_uppercase();
        if let Ok(class) = DNSClass::from_str(&upper) {
            if class != DNSClass::IN {
                return Err(RecordLineError::new(
                    t.start,
                    format!("class {class} is not supported (only IN)"),
                ));
            }
            continue;
        }
        return match RecordType::from_str(&upper) {
            Ok(rtype) => Ok(Some((i, rtype))),
            Err(_) => Err(RecordLineError::new(
                t.start,
                format!("unknown record type `{}`", t.text),
            )),
        };
    }
    Ok(None)
}

/// The address an A or AAAA record line publishes and its byte offset in the line, for the
/// scenario loader's address rule (`crate::address`); `None` for other lines (and for lines
/// [`parse_record_line`] refuses).
pub fn record_address(line: &str) -> Option<(IpAddr, usize)> {
    let toks = lex(line).ok()?;
    let (i, rtype) = find_type(&toks).ok()??;
    let data = toks.get(i + 1)?;
    let ip = match rtype {
        RecordType::A => IpAddr::V4(data.text.parse().ok()?),
        RecordType::AAAA => IpAddr::V6(data.text.parse().ok()?),
        _ => return None,
    };
    Some((ip, data.start))
}

/// Types the zone builder generates itself, and pseudo-types that are no zone data.
fn check_type_allowed(rtype: RecordType, owner: &Name, origin: &Name) -> Result<(), String> {
    match rtype {
        RecordType::SOA => Err("SOA is generated for every zone; do not declare it".into()),
        RecordType::DNSKEY
        | RecordType::RRSIG
        | RecordType::NSEC
        | RecordType::NSEC3
        | RecordType::NSEC3PARAM
        | RecordType::DS
        | RecordType::CDS
        | RecordType::CDNSKEY
        | RecordType::KEY
        | RecordType::SIG => Err(format!(
            "{rtype} records are generated by the signer; do not declare them"
        )),
        RecordType::ANY
        | RecordType::AXFR
        | RecordType::IXFR
        | RecordType::OPT
        | RecordType::TSIG
        | RecordType::NULL => Err(format!("{rtype} is not a zone data type")),
        RecordType::NS if owner == origin => {
            Err(format!("the apex NS set is generated (`{NS_HOST}`); do not declare it"))
        }
        _ => Ok(()),
    }
}

/// Field-level checks for the types scenarios use most, for precise columns.
fn check_rdata(rtype: RecordType, rdata: &[Tok<'_>], origin: &Name, end: usize) -> Result<(), RecordLineError> {
    match rtype {
        RecordType::A => {
            arity(rdata, end, &["an IPv4 address"])?;
            parse_field::<Ipv4Addr>(&rdata[0], "an IPv4 address")
        }
        RecordType::AAAA => {
            arity(rdata, end, &["an IPv6 address"])?;
            parse_field::<Ipv6Addr>(&rdata[0], "an IPv6 address")
        }
        RecordType::MX => {
            arity(rdata, end, &["a preference (0-65535)", "an exchange name"])?;
            parse_field::<u16>(&rdata[0], "a preference (0-65535)")?;
            name_field(&rdata[1], origin)
        }
        RecordType::CNAME | RecordType::DNAME | RecordType::NS | RecordType::PTR => {
            arity(rdata, end, &["a domain name"])?;
            name_field(&rdata[0], origin)
        }
        RecordType::TLSA => {
            // RFC 6698 §2.2: usage selector matching-type, then the data as hex (may be split).
            let fields = ["a usage (0-255)", "a selector (0-255)", "a matching type (0-255)"];
            for (i, what) in fields.iter().enumerate() {
                let Some(t) = rdata.get(i) else {
                    return Err(RecordLineError::new(end, format!("missing {what}")));
                };
                parse_field::<u8>(t, what)?;
            }
            let data = &rdata[3..];
            let Some(first) = data.first() else {
                return Err(RecordLineError::new(end, "missing certificate association data (hex)"));
            };
            if let Some(bad) = data.iter().find(|t| !t.text.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(RecordLineError::new(bad.start, format!("`{}` is not hex", bad.text)));
            }
            let digits: usize = data.iter().map(|t| t.text.len()).sum();
            if !digits.is_multiple_of(2) {
                return Err(RecordLineError::new(
                    first.start,
                    "certificate association data has an odd number of hex digits",
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// hickory 0.26 has no DNAME RData (its zone parser rejects the type), so the record is
/// built here as RFC 3597 opaque data: the target in uncompressed wire form, lowercased.
/// Lowercase matters: validators canonicalise DNAME RDATA before checking signatures
/// (RFC 4034 §6.2 lists DNAME), while hickory signs opaque data as it is, so the two agree
/// only if the bytes are already canonical. RFC 6672 §2.5 forbids compressing the target.
fn dname_record(
    owner: Name,
    default_ttl: u32,
    ttl_and_class: &[Tok<'_>],
    rdata: &[Tok<'_>],
    origin: &Name,
) -> Result<ParsedRecord, RecordLineError> {
    let mut ttl = default_ttl;
    for t in ttl_and_class {
        if let Ok(v) = parse_ttl(t.text) {
            ttl = v;
        }
    }
    let target = Name::parse(rdata[0].text, Some(origin))
        .map_err(|e| RecordLineError::new(rdata[0].start, format!("`{}` is not a domain name: {e}", rdata[0].text)))?
        .to_lowercase();
    // A fresh encoder holds no earlier name to point at, so nothing is compressed.
    let wire = target
        .to_bytes()
        .map_err(|e| RecordLineError::new(rdata[0].start, format!("cannot encode `{target}`: {e}")))?;
    let data = RData::Unknown {
        code: RecordType::DNAME,
        rdata: NULL::with(wire),
    };
    Ok(ParsedRecord {
        record: Record::from_rdata(owner, ttl, data),
    })
}

/// The target of a DNAME record, lowercased: one built by [`dname_record`] or one received
/// over the wire (hickory 0.26 decodes DNAME as opaque RFC 3597 data).
pub(crate) fn dname_target(record: &Record) -> Option<Name> {
    match &record.data {
        RData::Unknown { code, rdata } if *code == RecordType::DNAME => {
            let bytes = rdata.anything.as_slice();
            let mut decoder = BinDecoder::new(bytes);
            let name = Name::read(&mut decoder).ok()?;
            decoder.is_empty().then(|| name.to_lowercase())
        }
        _ => None,
    }
}

/// RFC 6672 §2.2: `qname`, strictly below the DNAME `owner`, with the owner suffix replaced
/// by `target`; `None` when the result would not be a domain name (over 255 octets).
pub(crate) fn dname_substitute(qname: &Name, owner: &Name, target: &Name) -> Option<Name> {
    let keep = usize::from(qname.num_labels().saturating_sub(owner.num_labels()));
    Name::from_labels(qname.iter().take(keep))
        .and_then(|head| head.append_domain(target))
        .ok()
}

fn arity(rdata: &[Tok<'_>], end: usize, fields: &[&str]) -> Result<(), RecordLineError> {
    if let Some(missing) = fields.get(rdata.len()) {
        return Err(RecordLineError::new(end, format!("missing {missing}")));
    }
    if let Some(extra) = rdata.get(fields.len()) {
        return Err(RecordLineError::new(
            extra.start,
            format!("unexpected `{}`", extra.text),
        ));
    }
    Ok(())
}

fn parse_field<T: FromStr>(t: &Tok<'_>, what: &str) -> Result<(), RecordLineError> {
    t.text
        .parse::<T>()
        .map(|_| ())
        .map_err(|_| RecordLineError::new(t.start, format!("`{}` is not {what}", t.text)))
}

fn name_field(t: &Tok<'_>, origin: &Name) -> Result<(), RecordLineError> {
    Name::parse(t.text, Some(origin))
        .map(|_| ())
        .map_err(|e| RecordLineError::new(t.start, format!("`{}` is not a domain name: {e}", t.text)))
}

/// Split a line into tokens (RFC 1035 §5.1: blanks separate, `;` starts a comment, quotes
/// group, parentheses only continue lines), keeping byte offsets.
fn lex(line: &str) -> Result<Vec<Tok<'_>>, RecordLineError> {
    let bytes = line.as_bytes();
    let len = bytes.len();
    let mut toks = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < len {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b';' => {
                while i < len && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                open.push(i);
                i += 1;
            }
            b')' => {
                if open.pop().is_none() {
                    return Err(RecordLineError::new(i, "`)` without `(`"));
                }
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    if i >= len {
                        return Err(RecordLineError::new(start, "unterminated quoted string"));
                    }
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                let i_end = i.min(len);
                toks.push(Tok {
                    start,
                    text: &line[start..i_end],
                });
                i = i_end;
            }
            _ => {
                let start = i;
                while i < len && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"') {
                    // An escape takes the next byte with it (RFC 1035 §5.1 `\X`).
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                // Token ends at an ASCII delimiter or the end, so this is a char boundary.
                let i_end = i.min(len);
                let i_end = (i_end..=len).find(|&k| line.is_char_boundary(k)).unwrap_or(len);
                toks.push(Tok {
                    start,
                    text: &line[start..i_end],
                });
                i = i_end;
            }
        }
    }
    if let Some(&at) = open.last() {
        return Err(RecordLineError::new(at, "`(` without `)`"));
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(line: &str) -> (usize, String) {
        let e = parse_record_line("example.test", 300, line).unwrap_err();
        (e.column, e.message)
    }

    #[test]
    fn accepts_common_records() {
        for line in [
            "@ MX 10 mx1",
            "mx1 300 A 192.0.2.10",
            "mx1 IN 300 AAAA 2001:db8::10",
            "_25._tcp.mx1 TLSA 3 1 1 00",
            "_25._tcp.mx1 TLSA 3 1 1 ABCD ef01",
            "www CNAME mx1",
            "mx2.example.test. A 192.0.2.20 ; comment",
            "txt TXT \"v=spf1 -all\"",
            "sub NS ns.elsewhere.test.",
            "*.wild A 192.0.2.30",
            "  mx3 A 192.0.2.40",
            "mail DNAME mail.provider.test.",
            "mail 60 IN DNAME Other",
        ] {
            parse_record_line("example.test.", 300, line).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn address_records_give_their_address_and_its_column() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(record_address("mx1 A 192.0.2.10"), Some((ip("192.0.2.10"), 6)));
        assert_eq!(
            record_address("mx1 60 IN AAAA ::ffff:127.0.0.1"),
            Some((ip("::ffff:127.0.0.1"), 15))
        );
        assert_eq!(record_address("mx1 IN 1h a 8.8.8.8"), Some((ip("8.8.8.8"), 12)));
        assert_eq!(record_address("@ MX 10 mx1"), None);
        assert_eq!(record_address("mx1 A not-an-address"), None);
    }

    #[test]
    fn parsed_record_has_lowercase_owner_and_ttl() {
        let origin = normalise_origin("example.test").unwrap();
        let r = parse_line(&origin, 300, "MX1 A 192.0.2.10").unwrap().record;
        assert_eq!(r.name.to_string(), "mx1.example.test.");
        assert_eq!(r.ttl, 300);
        let r = parse_line(&origin, 300, "mx1 60 A 192.0.2.10").unwrap().record;
        assert_eq!(r.ttl, 60);
    }

    #[test]
    fn dname_is_built_as_lowercase_wire_data() {
        let origin = normalise_origin("example.test").unwrap();
        let r = parse_line(&origin, 300, "Mail 60 DNAME Mail.Provider.TEST.")
            .unwrap()
            .record;
        assert_eq!(r.name.to_string(), "mail.example.test.");
        assert_eq!(r.ttl, 60);
        assert_eq!(r.record_type(), RecordType::DNAME);
        assert_eq!(dname_target(&r).unwrap().to_string(), "mail.provider.test.");
        let RData::Unknown { rdata, .. } = &r.data else {
            panic!("DNAME is opaque data")
        };
        // RFC 4034 §6.2: canonical (lowercase) name, uncompressed (RFC 6672 §2.5).
        assert_eq!(rdata.anything, b"\x04mail\x08provider\x04test\x00");
        // Relative targets are completed with the origin (RFC 1035 §5.1).
        let r = parse_line(&origin, 300, "mail DNAME other").unwrap().record;
        assert_eq!(dname_target(&r).unwrap().to_string(), "other.example.test.");
    }

    #[test]
    fn rejects_garbage_with_columns() {
        assert_eq!(col("mx1 A 192.0.2.300").0, 6);
        assert_eq!(col("mx1 FOO 192.0.2.1").0, 4);
        assert_eq!(col("@ MX ten mx1").0, 5);
        assert_eq!(col("@ MX 10").0, 7);
        assert_eq!(col("@ MX 10 mx1 extra").0, 12);
        assert_eq!(col("_25._tcp.mx1 TLSA 3 1 1 XYZ").0, 24);
        assert_eq!(col("_25._tcp.mx1 TLSA 3 1 300 AB").0, 22);
        assert_eq!(col("_25._tcp.mx1 TLSA 3 1 1 ABC").0, 24);
        assert_eq!(col("mx1 CH A 192.0.2.1").0, 4);
        assert_eq!(col("mail DNAME").0, 10);
        assert_eq!(col("mail DNAME a.test. b.test.").0, 19);
        assert_eq!(col("mx1").0, 3);
        assert_eq!(col("").0, 0);
        assert_eq!(col("$INCLUDE /etc/passwd").0, 0);
        assert_eq!(col("txt TXT \"open").0, 8);
        assert_eq!(col("mx1 A ( 192.0.2.1").0, 6);
        let (c, m) = col("www.example.org. A 192.0.2.1");
        assert_eq!(c, 0);
        assert!(m.contains("outside"), "{m}");
        let (c, m) = col("@ SOA ns hostmaster 1 2 3 4 5");
        assert_eq!(c, 2);
        assert!(m.contains("generated"), "{m}");
        let (c, m) = col("@ NS ns.other.");
        assert_eq!(c, 2);
        assert!(m.contains("apex"), "{m}");
        assert_eq!(col("sub DS 1 15 2 AB").0, 4);
        // Two records in one entry.
        assert!(col("a TXT x\nb TXT y").1.contains("one record"));
    }

    /// What hickory's parser accepts but the wire form cannot carry (issue 14: these failed
    /// only when the zone was signed, with no position).
    #[test]
    fn wire_limits_are_line_errors() {
        let s255 = "a".repeat(255);
        let ok = format!("t TXT \"{s255}\" {s255}");
        parse_record_line("example.test.", 300, &ok).unwrap_or_else(|e| panic!("{e}"));
        // The second string is 256 octets: its column.
        let (c, m) = col(&format!("t TXT \"{s255}\" \"a{s255}\""));
        assert_eq!(c, 6 + 257 + 1);
        assert!(
            m.contains("at most 255 octets (RFC 1035 §3.3)") && m.contains("is 256"),
            "{m}"
        );
        // RDATA of 257 strings of 255 octets: 65792 octets; 256 of them are 65536.
        for (n, bad) in [(256, true), (257, true), (255, false)] {
            let strings = vec![s255.as_str(); n].join(" ");
            let r = parse_record_line("example.test.", 300, &format!("t TXT {strings}"));
            assert_eq!(r.is_err(), bad, "{n}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.column, 6);
                assert!(e.message.contains("TXT data over 65535 octets"), "{}", e.message);
            }
        }
        // TLSA: three octets of parameters and the data; 65532 octets of data fit.
        let tlsa = |octets: usize| format!("_25._tcp.mx1 TLSA 3 1 0 {}", "ab".repeat(octets));
        parse_record_line("example.test.", 300, &tlsa(65532)).unwrap_or_else(|e| panic!("{e}"));
        let (c, m) = col(&tlsa(65533));
        assert_eq!(c, 18);
        assert!(m.contains("TLSA data over 65535 octets: RDLENGTH is 16 bits"), "{m}");
    }

    proptest::proptest! {
        /// Whatever an author writes, the parser answers (never panics), and an error column
        /// stays inside the line.
        #[test]
        fn never_panics(line in "\\PC{0,40}") {
            if let Err(e) = parse_record_line("example.test", 300, &line) {
                proptest::prop_assert!(e.column <= line.len());
            }
        }

        #[test]
        fn never_panics_on_record_like_lines(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "@", "mx1", "*.w", "a.b.", "300", "1h", "IN", "CH", "A", "AAAA", "MX", "TLSA",
                "TXT", "CNAME", "NS", "SRV", "CAA", "SSHFP", "10", "192.0.2.1", "2001:db8::1",
                "ABCD", "\"x y\"", "(", ")", ";", "\\", "$TTL", "-1", "99999999999", "",
            ]), 0..9)
        ) {
            let line = parts.join(" ");
            if let Err(e) = parse_record_line("example.test", 300, &line) {
                proptest::prop_assert!(e.column <= line.len());
            }
        }
    }

    #[test]
    fn bad_origin_is_reported() {
        let e = parse_record_line("a..b", 300, "@ A 192.0.2.1").unwrap_err();
        assert_eq!(e.column, 0);
    }
}
