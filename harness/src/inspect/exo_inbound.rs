//! Exchange Online's prerequisites for inbound SMTP DANE (Enable-SmtpDaneInbound), as
//! Microsoft documents them: the domain has one MX record, with preference 0 or 10, and no
//! fallback or secondary MX. `check` reports them for a zone file, timelines for the world
//! before every attempt (`lint = ["exo-inbound"]`).

/// One finding: whether the prerequisite holds, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub text: String,
}

/// Checks an MX RRset, given as (preference, host) pairs.
pub fn mx_prerequisites(mx: &[(u16, String)]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut sorted = mx.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => out.push(Finding {
            ok: false,
            text: "no MX record: enablement starts from the domain's MX record".into(),
        }),
        1 => out.push(Finding {
            ok: true,
            text: "one MX record, no fallback or secondary MX".into(),
        }),
        n => out.push(Finding {
            ok: false,
            text: format!(
                "{n} MX records ({}): enablement expects exactly one, with no fallback or secondary MX",
                sorted
                    .iter()
                    .map(|(p, h)| format!("{p} {}", h.trim_end_matches('.')))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
    if let Some((p, host)) = sorted.first() {
        let host = host.trim_end_matches('.');
        out.push(if *p == 0 || *p == 10 {
            Finding {
                ok: true,
                text: format!("MX preference {p} for {host} (0 or 10 expected)"),
            }
        } else {
            Finding {
                ok: false,
                text: format!("MX preference {p} for {host}: enablement expects 0 or 10"),
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mx_at_0_or_10_passes_anything_else_is_flagged() {
        let one = mx_prerequisites(&[(0, "new.example.test.".into())]);
        assert!(one.iter().all(|f| f.ok), "{one:?}");
        let two = mx_prerequisites(&[(20, "new.example.test.".into()), (0, "legacy.example.test.".into())]);
        assert!(!two[0].ok && two[0].text.contains("0 legacy.example.test, 20 new.example.test"));
        assert!(two[1].ok, "the most preferred is at 0");
        let pref = mx_prerequisites(&[(5, "mx.example.test.".into())]);
        assert!(!pref[1].ok && pref[1].text.contains("expects 0 or 10"));
        assert!(!mx_prerequisites(&[])[0].ok);
    }
}
