//! The one redaction table. Every placeholder that can appear in a snapshot is defined
//! here, and nothing else rewrites snapshot text.
//!
//! | placeholder | replaces | why |
//! |---|---|---|
//! | `[PORT]` | any loopback port of the world (DNS server, endpoints, relays) | ephemeral, differs every run |
//! | `[TMP]` | the run's temporary directory | differs every run |
//! | `[ELAPSED]` | durations measured during the run | timing is not behaviour |

use serde_json::Value;

#[derive(Debug, Default, Clone)]
pub struct Redactions {
    ports: Vec<u16>,
    tmp: Vec<String>,
}

impl Redactions {
    pub fn new(ports: Vec<u16>, tmp: Vec<String>) -> Redactions {
        Redactions { ports, tmp }
    }

    pub fn apply(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.apply(x)),
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if k.ends_with("_ms") || k == "elapsed" {
                        *x = Value::String("[ELAPSED]".into());
                    } else {
                        self.apply(x);
                    }
                }
            }
            _ => {}
        }
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for t in &self.tmp {
            if !t.is_empty() {
                out = out.replace(t.as_str(), "[TMP]");
            }
        }
        for p in &self.ports {
            out = replace_port(&out, *p);
        }
        out
    }
}

/// Replace `:PORT` and ` port PORT` only where the number stands alone, so that a port
/// such as 25 never eats part of 2025.
fn replace_port(s: &str, port: u16) -> String {
    let p = port.to_string();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&p) {
        let before = rest[..i].chars().last();
        let after = rest[i + p.len()..].chars().next();
        let standalone = !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit());
        let introduced = matches!(before, Some(':')) || rest[..i].ends_with("port ") || rest[..i].ends_with("-p ");
        out.push_str(&rest[..i]);
        out.push_str(if standalone && introduced { "[PORT]" } else { &p });
        rest = &rest[i + p.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_replaced_only_where_they_stand_alone() {
        let r = Redactions::new(vec![4025], vec!["/tmp/danesim-x".into()]);
        assert_eq!(
            r.text("127.0.0.1:4025 and year 14025, port 4025"),
            "127.0.0.1:[PORT] and year 14025, port [PORT]"
        );
        assert_eq!(r.text("/tmp/danesim-x/main.cf"), "[TMP]/main.cf");
        let mut v = serde_json::json!({"elapsed": 12, "a": ["x:4025"]});
        r.apply(&mut v);
        assert_eq!(v, serde_json::json!({"elapsed": "[ELAPSED]", "a": ["x:[PORT]"]}));
    }
}
