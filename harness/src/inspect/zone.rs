//! An RFC 1035 §5 master file as an admin exports it (BIND `named-compilezone -s full`,
//! `dig axfr`, a provider's export, `ldns-signzone` output), read with positions so that
//! every error points at file:line:col.
//!
//! hickory's zone parser decides what RDATA is valid for the types it can read, but it
//! cannot be used for the whole file: it refuses the DNSSEC types of a signed export
//! (DNSKEY, RRSIG, NSEC, NSEC3 are "dynamically generated" to it), DNAME and unknown types,
//! and its errors carry no position. So the entries are split here (RFC 1035 §5.1: blanks,
//! `;` comments, quotes, parentheses, `$ORIGIN`, `$TTL`, an inherited owner), and only the
//! RDATA of one record at a time goes to hickory. The records `check` interprets (MX, CNAME,
//! DNAME, NS, TLSA, RRSIG) are read field by field for precise columns; TLSA through
//! [`Tlsa::parse`], the project's one TLSA reader.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use super::InspectError;
use crate::pki::Tlsa;

/// One zone file, read.
#[derive(Debug, Clone)]
pub struct Zone {
    pub path: PathBuf,
    /// The zone's apex: the SOA owner, else `--origin`, else the first `$ORIGIN`.
    pub apex: Name,
    /// In file order.
    pub records: Vec<ZoneRecord>,
}

/// One resource record and where it was written.
#[derive(Debug, Clone)]
pub struct ZoneRecord {
    /// Lowercase, fully qualified.
    pub owner: Name,
    pub ttl: u32,
    /// The type mnemonic in uppercase (`MX`, `TLSA`, `TYPE65534`).
    pub rtype: String,
    pub data: Rdata,
    /// 1-based line of the entry.
    pub line: usize,
}

/// The RDATA `check` looks into; everything else is kept only by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    Mx {
        preference: u16,
        exchange: Name,
    },
    Cname(Name),
    Dname(Name),
    Ns(Name),
    Tlsa(Tlsa),
    Rrsig {
        /// The type covered, uppercase.
        covered: String,
        /// Signature expiration, seconds since the epoch (RFC 4034 §3.1.5).
        expiration: i64,
    },
    Other,
}

/// The DNSSEC types of a signed export.
pub const DNSSEC_TYPES: [&str; 5] = ["DNSKEY", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM"];

/// Types that hickory 0.26 cannot read from text, or does not know by name, but that a real
/// export contains. They are kept by type, unchecked (RFC 3597 §5 lets a reader treat any
/// type as opaque).
const OPAQUE_TYPES: &[&str] = &[
    "DNSKEY",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "DS",
    "CDS",
    "CDNSKEY",
    "KEY",
    "SIG",
    "NULL",
    "ZONEMD",
    "LOC",
    "SPF",
    "RP",
    "AFSDB",
    "URI",
    "DHCID",
    "IPSECKEY",
    "EUI48",
    "EUI64",
    "HIP",
    "APL",
    "KX",
    "DLV",
    "TA",
    "NID",
    "L32",
    "L64",
    "LP",
    "RT",
    "X25",
    "ISDN",
    "NSAP",
    "MINFO",
    "MB",
    "MG",
    "MR",
    "WKS",
    "GPOS",
    "A6",
    "SINK",
    "AMTRELAY",
    "RESINFO",
    "WALLET",
    "DOA",
    "AVC",
    "CLA",
    "IPN",
    "DSYNC",
];

/// A longer CNAME chain inside one zone is a mistake, and resolvers cap chains too.
const MAX_CNAME_CHAIN: usize = 8;

/// One token and its 1-based position.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    line: usize,
    col: usize,
}

/// One entry (RFC 1035 §5.1): the tokens up to the end of a line outside parentheses.
#[derive(Debug)]
struct Entry {
    /// The entry's first line began with a blank: the owner is the previous one.
    blank_owner: bool,
    toks: Vec<Tok>,
}

impl Zone {
    /// Reads and parses a zone file. `origin` is the initial origin for relative names
    /// (`--origin`); a `$ORIGIN` in the file replaces it from there on.
    pub fn read(path: &Path, origin: Option<&str>) -> Result<Zone, InspectError> {
        let text = std::fs::read_to_string(path).map_err(|source| InspectError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Zone::parse(path, &text, origin)
    }

    /// Parses zone file text; `path` is only for messages.
    pub fn parse(path: &Path, text: &str, origin: Option<&str>) -> Result<Zone, InspectError> {
        let at = |t: &Tok, message: String| InspectError::Zone {
            path: path.to_path_buf(),
            line: t.line,
            column: t.col,
            message,
        };
        let mut origin: Option<Name> = match origin {
            Some(o) => Some(absolute_name(o).map_err(|m| InspectError::Argument(format!("--origin {o}: {m}")))?),
            None => None,
        };
        let cli_origin = origin.clone();
        let mut first_directive_origin: Option<Name> = None;
        let mut default_ttl: Option<u32> = None;
        let mut last_ttl: Option<u32> = None;
        let mut last_owner: Option<Name> = None;
        let mut records = Vec::new();

        for entry in entries(text).map_err(|(line, col, message)| InspectError::Zone {
            path: path.to_path_buf(),
            line,
            column: col,
            message,
        })? {
            let first = &entry.toks[0];
            if !entry.blank_owner && first.text.starts_with('$') {
                let directive = first.text.to_ascii_uppercase();
                let arg = entry.toks.get(1);
                match (directive.as_str(), arg) {
                    ("$ORIGIN", Some(a)) => {
                        let name = name_field(a, origin.as_ref()).map_err(|m| at(a, m))?;
                        first_directive_origin.get_or_insert_with(|| name.clone());
                        origin = Some(name);
                    }
                    ("$TTL", Some(a)) => {
                        default_ttl = Some(
                            parse_ttl(&a.text)
                                .map_err(|_| at(a, format!("`{}` is not a TTL (seconds, or 1h30m)", a.text)))?,
                        );
                    }
                    ("$ORIGIN" | "$TTL", None) => {
                        return Err(at(first, format!("{directive} needs a value")));
                    }
                    ("$INCLUDE", _) => {
                        return Err(at(
                            first,
                            "$INCLUDE is not supported: check one self-contained file (e.g. the output of \
                             `named-compilezone -s full -o - ZONE FILE` or `ldns-read-zone FILE`)"
                                .into(),
                        ));
                    }
                    ("$GENERATE", _) => {
                        return Err(at(
                            first,
                            "$GENERATE (a BIND extension) is not supported: expand it first with \
                             `named-compilezone -s full -o - ZONE FILE`"
                                .into(),
                        ));
                    }
                    _ => return Err(at(first, format!("unknown directive `{}`", first.text))),
                }
                continue;
            }

            // Owner: written, `@`, or inherited from the previous entry (RFC 1035 §5.1).
            let mut rest = &entry.toks[..];
            let owner = if entry.blank_owner {
                last_owner.clone().ok_or_else(|| {
                    at(
                        first,
                        "this record begins with a blank, so it takes the previous record's owner, but there \
                         is none; write the owner name at the start of the line"
                            .into(),
                    )
                })?
            } else {
                rest = &rest[1..];
                name_field(first, origin.as_ref()).map_err(|m| at(first, m))?
            };

            // [TTL] [class] type, TTL and class in either order (RFC 1035 §5.1).
            let mut ttl = None;
            let mut rtype = None;
            while let Some((t, tail)) = rest.split_first() {
                rest = tail;
                if let Ok(v) = parse_ttl(&t.text) {
                    ttl = Some(v);
                    continue;
                }
                let upper = t.text.to_ascii_uppercase();
                if let Ok(class) = DNSClass::from_str(&upper) {
                    if class != DNSClass::IN {
                        return Err(at(
                            t,
                            format!("class {upper} is not supported: only IN zones are checked"),
                        ));
                    }
                    continue;
                }
                rtype = Some(type_field(t).map_err(|m| at(t, m))?);
                break;
            }
            let Some(rtype) = rtype else {
                let last = entry.toks.last().unwrap_or(first);
                return Err(at(last, "missing record type after the owner, TTL and class".into()));
            };
            let end = entry.toks.last().unwrap_or(first);
            if ttl.is_some() {
                last_ttl = ttl;
            }
            // RFC 2308 §4: $TTL gives the default; before RFC 2308, the last stated TTL
            // (RFC 1035 §5.1).
            let ttl = ttl.or(default_ttl).or(last_ttl).ok_or_else(|| {
                at(
                    first,
                    "no TTL for this record, and no $TTL before it (RFC 2308 §4); add `$TTL 3600` at the top".into(),
                )
            })?;
            let data = rdata(&rtype, rest, origin.as_ref(), end).map_err(|(t, m)| at(&t, m))?;
            last_owner = Some(owner.clone());
            records.push(ZoneRecord {
                owner,
                ttl,
                rtype,
                data,
                line: first.line,
            });
        }

        let soa_owners: Vec<&Name> = records.iter().filter(|r| r.rtype == "SOA").map(|r| &r.owner).collect();
        let apex = match soa_owners.as_slice() {
            [] => cli_origin
                .or(first_directive_origin)
                .ok_or_else(|| InspectError::ZoneContent {
                    path: path.to_path_buf(),
                    message: "no SOA record and no $ORIGIN, so the zone's apex is unknown; pass --origin example.com."
                        .into(),
                })?,
            [one, rest @ ..] => {
                if let Some(other) = rest.iter().find(|o| *o != one) {
                    return Err(InspectError::ZoneContent {
                        path: path.to_path_buf(),
                        message: format!("SOA records for both {one} and {other}: give one zone per file"),
                    });
                }
                (*one).clone()
            }
        };
        Ok(Zone {
            path: path.to_path_buf(),
            apex,
            records,
        })
    }

    /// The records of one RRset, in file order.
    pub fn rrset(&self, owner: &Name, rtype: &str) -> Vec<&ZoneRecord> {
        self.records
            .iter()
            .filter(|r| r.rtype == rtype && &r.owner == owner)
            .collect()
    }

    /// Whether this file is authoritative for `name`: at or below the apex and not below a
    /// delegation (an NS RRset other than the apex's, RFC 1034 §4.2.1).
    pub fn authoritative(&self, name: &Name) -> bool {
        self.apex.zone_of(name)
            && !self
                .records
                .iter()
                .any(|r| r.rtype == "NS" && r.owner != self.apex && r.owner.zone_of(name))
    }

    /// Whether any record of the given types exists in the file.
    pub fn count(&self, rtype: &str) -> usize {
        self.records.iter().filter(|r| r.rtype == rtype).count()
    }

    /// Looks `name` up for `rtype` inside this file, following CNAMEs (RFC 1034 §3.6.2) as
    /// a resolver would, as long as they stay in the file.
    pub fn lookup(&self, name: &Name, rtype: &str) -> Lookup<'_> {
        let mut chain = vec![name.clone()];
        let mut current = name.clone();
        loop {
            if !self.authoritative(&current) {
                return Lookup::Elsewhere { chain };
            }
            let found = self.rrset(&current, rtype);
            if !found.is_empty() {
                return Lookup::Found { chain, records: found };
            }
            let next = self.rrset(&current, "CNAME").into_iter().find_map(|r| match &r.data {
                Rdata::Cname(t) => Some(t.clone()),
                _ => None,
            });
            match next {
                Some(target) if chain.contains(&target) || chain.len() > MAX_CNAME_CHAIN => {
                    chain.push(target);
                    return Lookup::Loop { chain };
                }
                Some(target) => {
                    chain.push(target.clone());
                    current = target;
                }
                None => return Lookup::NoData { chain },
            }
        }
    }
}

/// What a lookup inside the file found. `chain` is the name looked up, then each CNAME
/// target in turn.
#[derive(Debug)]
pub enum Lookup<'z> {
    Found {
        chain: Vec<Name>,
        records: Vec<&'z ZoneRecord>,
    },
    /// No such RRset at the last name of the chain (no data or no such name).
    NoData { chain: Vec<Name> },
    /// The last name of the chain is not in this file (outside the apex or delegated).
    Elsewhere { chain: Vec<Name> },
    /// The CNAME chain loops or is too long.
    Loop { chain: Vec<Name> },
}

/// Splits the text into entries, or returns (line, col, message).
fn entries(text: &str) -> Result<Vec<Entry>, (usize, usize, String)> {
    let mut out = Vec::new();
    let mut toks: Vec<Tok> = Vec::new();
    let mut blank_owner = false;
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut at_line_start = true;
    let mut chars = text.chars().peekable();
    let (mut line, mut col) = (1usize, 0usize);
    let mut cur: Option<Tok> = None;

    fn flush(cur: &mut Option<Tok>, toks: &mut Vec<Tok>) {
        if let Some(t) = cur.take() {
            toks.push(t);
        }
    }

    while let Some(c) = chars.next() {
        col += 1;
        if at_line_start && open.is_empty() && toks.is_empty() {
            // Only the first line of an entry decides whether the owner is inherited.
            blank_owner = c == ' ' || c == '\t';
        }
        at_line_start = false;
        match c {
            '\n' => {
                flush(&mut cur, &mut toks);
                if open.is_empty() && !toks.is_empty() {
                    out.push(Entry {
                        blank_owner,
                        toks: std::mem::take(&mut toks),
                    });
                }
                line += 1;
                col = 0;
                at_line_start = true;
            }
            ' ' | '\t' | '\r' => flush(&mut cur, &mut toks),
            ';' => {
                flush(&mut cur, &mut toks);
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '(' => {
                flush(&mut cur, &mut toks);
                open.push((line, col));
            }
            ')' => {
                flush(&mut cur, &mut toks);
                if open.pop().is_none() {
                    return Err((line, col, "`)` without `(`".into()));
                }
            }
            '"' => {
                flush(&mut cur, &mut toks);
                let (l0, c0) = (line, col);
                let mut s = String::from('"');
                loop {
                    match chars.next() {
                        None | Some('\n') => return Err((l0, c0, "unterminated quoted string".into())),
                        Some('\\') => {
                            s.push('\\');
                            col += 1;
                            if let Some(n) = chars.next().filter(|&n| n != '\n') {
                                s.push(n);
                                col += 1;
                            }
                        }
                        Some('"') => {
                            s.push('"');
                            col += 1;
                            break;
                        }
                        Some(o) => {
                            s.push(o);
                            col += 1;
                        }
                    }
                }
                toks.push(Tok {
                    text: s,
                    line: l0,
                    col: c0,
                });
            }
            _ => {
                let t = cur.get_or_insert_with(|| Tok {
                    text: String::new(),
                    line,
                    col,
                });
                t.text.push(c);
                // RFC 1035 §5.1 `\X`: the next character belongs to the token, whatever it is.
                if c == '\\'
                    && let Some(n) = chars.next_if(|&n| n != '\n')
                {
                    t.text.push(n);
                    col += 1;
                }
            }
        }
    }
    flush(&mut cur, &mut toks);
    if let Some(&(l, c)) = open.last() {
        return Err((l, c, "`(` without `)`".into()));
    }
    if !toks.is_empty() {
        out.push(Entry { blank_owner, toks });
    }
    Ok(out)
}

/// A name as zone files write it: absolute with a trailing dot, `@` for the origin, or
/// relative to the origin.
fn name_field(t: &Tok, origin: Option<&Name>) -> Result<Name, String> {
    if t.text == "@" {
        return origin
            .cloned()
            .ok_or_else(|| "`@` names the origin, but there is none yet; add $ORIGIN or pass --origin".into());
    }
    if !t.text.ends_with('.') && origin.is_none() {
        return Err(format!(
            "`{}` is a relative name, but there is no origin yet; add $ORIGIN or pass --origin example.com.",
            t.text
        ));
    }
    Name::parse(&t.text, origin)
        .map(|n| n.to_lowercase())
        .map_err(|e| format!("`{}` is not a domain name: {e}", t.text))
}

fn absolute_name(s: &str) -> Result<Name, String> {
    Name::parse(s.trim_end_matches('.'), Some(&Name::root()))
        .map(|n| n.to_lowercase())
        .map_err(|e| format!("not a domain name: {e}"))
}

/// A type mnemonic, or `TYPEnnn` (RFC 3597 §5), as the canonical uppercase mnemonic.
fn type_field(t: &Tok) -> Result<String, String> {
    let upper = t.text.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE")
        && let Ok(code) = n.parse::<u16>()
    {
        return Ok(match RecordType::from(code) {
            RecordType::Unknown(_) => upper,
            known => known.to_string(),
        });
    }
    if RecordType::from_str(&upper).is_ok() || OPAQUE_TYPES.contains(&upper.as_str()) {
        return Ok(upper);
    }
    Err(format!(
        "unknown record type `{}`; write an unlisted type as TYPEnnn (RFC 3597 §5)",
        t.text
    ))
}

/// Reads the RDATA of one record; on error, the token to blame and the message.
fn rdata(rtype: &str, toks: &[Tok], origin: Option<&Name>, end: &Tok) -> Result<Rdata, (Tok, String)> {
    let first = || toks.first().unwrap_or(end).clone();
    if toks.is_empty() {
        return Err((end.clone(), format!("{rtype} record without data")));
    }
    if toks[0].text == "\\#" {
        return generic(rtype, toks);
    }
    let arity = |names: &[&str]| -> Result<(), (Tok, String)> {
        if let Some(missing) = names.get(toks.len()) {
            return Err((end.clone(), format!("{rtype}: missing {missing}")));
        }
        if let Some(extra) = toks.get(names.len()) {
            return Err((extra.clone(), format!("{rtype}: unexpected `{}`", extra.text)));
        }
        Ok(())
    };
    let name = |t: &Tok| name_field(t, origin).map_err(|m| (t.clone(), m));
    match rtype {
        "MX" => {
            arity(&["a preference (0-65535)", "an exchange name"])?;
            let preference = toks[0].text.parse::<u16>().map_err(|_| {
                (
                    toks[0].clone(),
                    format!("`{}` is not an MX preference (0-65535)", toks[0].text),
                )
            })?;
            Ok(Rdata::Mx {
                preference,
                exchange: name(&toks[1])?,
            })
        }
        "CNAME" | "DNAME" | "NS" => {
            arity(&["a domain name"])?;
            let target = name(&toks[0])?;
            Ok(match rtype {
                "CNAME" => Rdata::Cname(target),
                "DNAME" => Rdata::Dname(target),
                _ => Rdata::Ns(target),
            })
        }
        "TLSA" => {
            // Point at the offending hex token; Tlsa::parse judges the rest (RFC 6698 §2.2).
            if let Some(bad) = toks
                .iter()
                .skip(3)
                .find(|t| !t.text.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err((bad.clone(), format!("TLSA: `{}` is not hex association data", bad.text)));
            }
            let text: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
            Tlsa::parse(&text.join(" "))
                .map(Rdata::Tlsa)
                .map_err(|e| (first(), e.to_string()))
        }
        "RRSIG" => {
            // RFC 4034 §3.2: type covered, algorithm, labels, original TTL, expiration,
            // inception, key tag, signer, signature.
            if toks.len() < 9 {
                return Err((end.clone(), "RRSIG: expected 9 fields (RFC 4034 §3.2)".into()));
            }
            let covered = type_field(&toks[0]).map_err(|m| (toks[0].clone(), m))?;
            let expiration = signature_time(&toks[4].text).ok_or_else(|| {
                (
                    toks[4].clone(),
                    format!(
                        "`{}` is not a signature expiration (YYYYMMDDHHmmSS, RFC 4034 §3.2)",
                        toks[4].text
                    ),
                )
            })?;
            Ok(Rdata::Rrsig { covered, expiration })
        }
        _ if OPAQUE_TYPES.contains(&rtype) || rtype.starts_with("TYPE") => Ok(Rdata::Other),
        _ => {
            // hickory decides for every other type it can read (A, AAAA, TXT, SOA, CAA, SRV...).
            let code = RecordType::from_str(rtype).map_err(|e| (first(), e.to_string()))?;
            let text: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
            RData::try_from_str(code, &text.join(" "))
                .map(|_| Rdata::Other)
                .map_err(|e| (first(), format!("invalid {rtype} data: {e}")))
        }
    }
}

/// RFC 3597 §5 generic RDATA: `\# <length> <hex>...`. TLSA is decoded (ldns-dane -b prints
/// this form); other types are kept by type.
fn generic(rtype: &str, toks: &[Tok]) -> Result<Rdata, (Tok, String)> {
    let Some(len_tok) = toks.get(1) else {
        return Err((toks[0].clone(), "\\# needs a length and hex data (RFC 3597 §5)".into()));
    };
    let len: usize = len_tok
        .text
        .parse()
        .map_err(|_| (len_tok.clone(), format!("`{}` is not an RDATA length", len_tok.text)))?;
    let hex_text: String = toks[2..].iter().map(|t| t.text.as_str()).collect();
    let bytes = hex::decode(&hex_text)
        .map_err(|e| (toks.get(2).unwrap_or(len_tok).clone(), format!("RDATA is not hex: {e}")))?;
    if bytes.len() != len {
        return Err((
            len_tok.clone(),
            format!("RDATA length {len} does not match the {} bytes given", bytes.len()),
        ));
    }
    if rtype == "TLSA" {
        if bytes.len() < 4 {
            return Err((
                len_tok.clone(),
                "TLSA RDATA needs at least 4 bytes (RFC 6698 §2.1)".into(),
            ));
        }
        return Ok(Rdata::Tlsa(Tlsa {
            usage: bytes[0],
            selector: bytes[1],
            matching: bytes[2],
            data: bytes[3..].to_vec(),
        }));
    }
    Ok(Rdata::Other)
}

/// RFC 4034 §3.2: YYYYMMDDHHmmSS in UTC, or (deprecated) seconds since the epoch.
fn signature_time(s: &str) -> Option<i64> {
    if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
        let date = time::Date::from_calendar_date(
            n(0..4)? as i32,
            time::Month::try_from(n(4..6)? as u8).ok()?,
            n(6..8)? as u8,
        )
        .ok()?;
        let t = time::Time::from_hms(n(8..10)? as u8, n(10..12)? as u8, n(12..14)? as u8).ok()?;
        return Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp());
    }
    s.parse::<u32>().ok().map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Zone, InspectError> {
        Zone::parse(Path::new("z.db"), text, None)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const HEAD: &str = "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n";

    #[test]
    fn reads_a_typical_export() {
        let z = parse(&format!(
            "{HEAD}\
             @ NS ns1\n\
             \x20 MX 10 mail ; owner inherited\n\
             mail 300 IN A 192.0.2.1\n\
             _25._tcp.mail IN 300 TLSA 3 1 1 (\n  0123456789abcdef0123456789abcdef\n  0123456789abcdef0123456789abcdef )\n\
             txt TXT \"v=spf1 ; -all\" \"(\"\n\
             alias CNAME mail\n\
             odd TYPE65534 \\# 3 010203\n\
             loc LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m\n"
        ))
        .unwrap();
        assert_eq!(z.apex.to_string(), "example.com.");
        let mx = &z.records[2];
        assert_eq!(
            (mx.owner.to_string().as_str(), mx.rtype.as_str(), mx.ttl),
            ("example.com.", "MX", 3600)
        );
        assert_eq!(
            mx.data,
            Rdata::Mx {
                preference: 10,
                exchange: Name::from_ascii("mail.example.com.").unwrap()
            }
        );
        let tlsa = &z.records[4];
        assert_eq!((tlsa.ttl, tlsa.line), (300, 7));
        match &tlsa.data {
            Rdata::Tlsa(t) => assert_eq!((t.usage, t.selector, t.matching, t.data.len()), (3, 1, 1, 32)),
            other => panic!("{other:?}"),
        }
        assert_eq!(z.records[5].rtype, "TXT");
        assert_eq!(z.records[7].rtype, "TYPE65534");
        assert_eq!(z.records.len(), 9);
        match z.lookup(&Name::from_ascii("alias.example.com.").unwrap(), "A") {
            Lookup::Found { chain, records } => {
                assert_eq!(chain.len(), 2);
                assert_eq!(records.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let cases = [
            ("mail A 192.0.2.999\n", "z.db:4:8: invalid A data"),
            ("@ MX ten mail\n", "z.db:4:6: `ten` is not an MX preference"),
            ("@ MX 10\n", "z.db:4:6: MX: missing an exchange name"),
            ("_25._tcp.mail TLSA 3 1 1 xyz\n", "z.db:4:26: TLSA: `xyz` is not hex"),
            ("_25._tcp.mail TLSA 3 1 x 00\n", "z.db:4:20: bad TLSA record"),
            ("mail FOO 1\n", "z.db:4:6: unknown record type `FOO`"),
            ("$INCLUDE other.db\n", "z.db:4:1: $INCLUDE is not supported"),
            ("mail ( A\n 192.0.2.1\n", "z.db:4:6: `(` without `)`"),
            ("mail TXT \"open\n", "z.db:4:10: unterminated quoted string"),
            ("mail CH A 192.0.2.1\n", "z.db:4:6: class CH is not supported"),
            ("mail 300\n", "z.db:4:6: missing record type"),
        ];
        for (line, want) in cases {
            let e = err(&format!("{HEAD}{line}"));
            assert!(e.starts_with(want), "{line:?}: got `{e}`, want `{want}`");
        }
        assert!(err(" A 192.0.2.1\n").starts_with("z.db:1:2: this record begins with a blank"));
        assert!(err("mail A 192.0.2.1\n").contains("relative name, but there is no origin"));
        assert!(err("mail.example.com. A 192.0.2.1\n").starts_with("z.db:1:1: no TTL"));
        assert!(err("$TTL 60\nmail.example.com. A 192.0.2.1\n").contains("pass --origin"));
    }

    #[test]
    fn signed_exports_and_generic_tlsa() {
        let z = parse(&format!(
            "{HEAD}\
             @ DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n\
             @ RRSIG SOA 15 2 3600 20350101000000 20250101000000 12345 example.com. AAAA\n\
             @ NSEC mail.example.com. SOA RRSIG NSEC DNSKEY\n\
             _25._tcp.mail TYPE52 \\# 35 030101 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
        ))
        .unwrap();
        assert_eq!(z.count("DNSKEY"), 1);
        assert_eq!(
            z.records[2].data,
            Rdata::Rrsig {
                covered: "SOA".into(),
                expiration: 2051222400
            }
        );
        assert!(matches!(&z.records[4].data, Rdata::Tlsa(t) if t.usage == 3 && t.data.len() == 32));
        assert_eq!(z.records[4].rtype, "TLSA");
    }

    #[test]
    fn delegations_and_cname_loops() {
        let z = parse(&format!(
            "{HEAD}sub NS ns.elsewhere.net.\na CNAME b\nb CNAME a\nc CNAME mx.other.net.\n"
        ))
        .unwrap();
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert!(!z.authoritative(&n("mx.sub.example.com.")));
        assert!(z.authoritative(&n("mx.example.com.")));
        assert!(!z.authoritative(&n("example.net.")));
        assert!(matches!(z.lookup(&n("a.example.com."), "A"), Lookup::Loop { .. }));
        assert!(matches!(z.lookup(&n("c.example.com."), "A"), Lookup::Elsewhere { chain } if chain.len() == 2));
        assert!(matches!(z.lookup(&n("d.example.com."), "A"), Lookup::NoData { .. }));
    }

    #[test]
    fn origin_from_the_command_line() {
        let z = Zone::parse(
            Path::new("z.db"),
            "$TTL 60\n@ MX 10 mx\nmx A 192.0.2.1\n",
            Some("Example.COM"),
        )
        .unwrap();
        assert_eq!(z.apex.to_string(), "example.com.");
        assert_eq!(z.records[0].owner.to_string(), "example.com.");
        let e = Zone::parse(Path::new("z.db"), "$TTL 60\n", Some("bad..name")).unwrap_err();
        assert!(
            e.to_string().starts_with("--origin bad..name: not a domain name"),
            "{e}"
        );
    }

    const SAMPLE: &str = "$ORIGIN example.com.\n$TTL 3600\n\
        @ SOA ns1 hostmaster ( 1 7200 3600\n 1209600 300 )\n\
        @ MX 10 mail\n\
        mail A 192.0.2.1\n\
        txt TXT \"a ; b\" \"c\\\"d\"\n\
        _25._tcp.mail TLSA 3 1 1 ( 0123456789abcdef0123456789abcdef\n 0123456789abcdef0123456789abcdef )\n\
        @ RRSIG MX 15 2 3600 20350101000000 20250101000000 1 example.com. AAAA\n\
        odd TYPE65534 \\# 2 0102\n";

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Bad input never panics, and a zone error points inside the file.
        #[test]
        fn mutated_zone_files_never_panic(pos in 0usize..1000, byte in proptest::prelude::any::<u8>(), delete in proptest::prelude::any::<bool>()) {
            let mut bytes = SAMPLE.as_bytes().to_vec();
            let pos = pos % (bytes.len() + 1);
            if delete && pos < bytes.len() {
                bytes.remove(pos);
            } else {
                bytes.insert(pos, byte);
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Err(InspectError::Zone { line, column, .. }) = Zone::parse(Path::new("z.db"), &text, None) {
                proptest::prop_assert!(line >= 1 && column >= 1);
                proptest::prop_assert!(line <= text.lines().count().max(1), "line {} of {}", line, text.lines().count());
                let width = text.lines().nth(line - 1).map_or(0, |l| l.chars().count());
                proptest::prop_assert!(column <= width + 1, "column {} of a {}-char line", column, width);
            }
        }
    }
}
