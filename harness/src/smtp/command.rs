//! The SMTP command-line parser (RFC 5321 §4.1): pure, total over arbitrary bytes, and the inverse of [`render`].

/// One ESMTP parameter of MAIL or RCPT (RFC 5321 §4.1.2 `esmtp-param`). Keywords are upper-cased when parsed,
/// because RFC 5321 §2.4 makes them case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Param {
    pub keyword: String,
    pub value: Option<String>,
}

/// A parsed command line (without its CRLF).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Command {
    /// `EHLO domain` (§4.1.1.1).
    Ehlo(String),
    /// `HELO domain` (§4.1.1.1).
    Helo(String),
    /// `MAIL FROM:<reverse-path> [params]` (§4.1.1.2); the path is empty for the null sender `<>`.
    Mail {
        path: String,
        params: Vec<Param>,
    },
    /// `RCPT TO:<forward-path> [params]` (§4.1.1.3).
    Rcpt {
        path: String,
        params: Vec<Param>,
    },
    Data,
    Rset,
    /// `NOOP [string]`; the argument is ignored (§4.1.1.9).
    Noop,
    Quit,
    /// RFC 3207 §4: takes no parameters.
    StartTls,
    Vrfy(String),
    Expn(String),
    Help(Option<String>),
    /// A verb this server does not know, as sent (the rest of the line is dropped).
    Unknown(String),
}

/// Why a command line could not be parsed. Each maps to the RFC 5321 §4.2.3 reply a server gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("empty command line")]
    Empty,
    #[error("command line is not UTF-8")]
    NotUtf8,
    #[error("control character in command line")]
    ControlCharacter,
    #[error("syntax error in parameters or arguments: {0}")]
    Arguments(&'static str),
}

impl ParseError {
    /// RFC 5321 §4.2.3: 500 for an unrecognisable line, 501 for bad arguments of a known command.
    pub fn reply_code(&self) -> u16 {
        match self {
            ParseError::Empty | ParseError::NotUtf8 | ParseError::ControlCharacter => 500,
            ParseError::Arguments(_) => 501,
        }
    }

    /// RFC 3463 enhanced status code matching [`ParseError::reply_code`].
    pub fn enhanced_code(&self) -> &'static str {
        match self {
            ParseError::Empty | ParseError::NotUtf8 | ParseError::ControlCharacter => "5.5.2",
            ParseError::Arguments(_) => "5.5.4",
        }
    }
}

/// Parses one command line. A trailing CRLF (or bare LF) is tolerated and removed.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    // Tabs are tolerated as white space; every other control character (NUL, bare CR, ...) is refused.
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::ControlCharacter);
    }
    let line = line.trim_end_matches([' ', '\t']);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i + 1..].trim_start_matches([' ', '\t'])),
        None => (line, ""),
    };
    if verb.is_empty() {
        // A line starting with white space has no verb.
        return Err(ParseError::Empty);
    }
    let upper = verb.to_ascii_uppercase();
    match upper.as_str() {
        "EHLO" => Ok(Command::Ehlo(one_word(rest, "EHLO needs one domain")?)),
        "HELO" => Ok(Command::Helo(one_word(rest, "HELO needs one domain")?)),
        "MAIL" => {
            let rest = strip_prefix_ci(rest, "FROM:").ok_or(ParseError::Arguments("expected MAIL FROM:<path>"))?;
            let (path, params) = path_and_params(rest)?;
            Ok(Command::Mail { path, params })
        }
        "RCPT" => {
            let rest = strip_prefix_ci(rest, "TO:").ok_or(ParseError::Arguments("expected RCPT TO:<path>"))?;
            let (path, params) = path_and_params(rest)?;
            if path.is_empty() {
                return Err(ParseError::Arguments("empty forward-path"));
            }
            Ok(Command::Rcpt { path, params })
        }
        "DATA" => no_args(rest, Command::Data),
        "RSET" => no_args(rest, Command::Rset),
        "QUIT" => no_args(rest, Command::Quit),
        "STARTTLS" => no_args(rest, Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "VRFY" if rest.is_empty() => Err(ParseError::Arguments("VRFY needs a string")),
        "VRFY" => Ok(Command::Vrfy(rest.to_string())),
        "EXPN" if rest.is_empty() => Err(ParseError::Arguments("EXPN needs a string")),
        "EXPN" => Ok(Command::Expn(rest.to_string())),
        "HELP" => Ok(Command::Help((!rest.is_empty()).then(|| rest.to_string()))),
        _ => Ok(Command::Unknown(verb.to_string())),
    }
}

/// Renders a command as a client would send it, without CRLF.
pub fn render(command: &Command) -> String {
    match command {
        Command::Ehlo(d) => format!("EHLO {d}"),
        Command::Helo(d) => format!("HELO {d}"),
        Command::Mail { path, params } => format!("MAIL FROM:<{path}>{}", render_params(params)),
        Command::Rcpt { path, params } => format!("RCPT TO:<{path}>{}", render_params(params)),
        Command::Data => "DATA".into(),
        Command::Rset => "RSET".into(),
        Command::Noop => "NOOP".into(),
        Command::Quit => "QUIT".into(),
        Command::StartTls => "STARTTLS".into(),
        Command::Vrfy(s) => format!("VRFY {s}"),
        Command::Expn(s) => format!("EXPN {s}"),
        Command::Help(None) => "HELP".into(),
        Command::Help(Some(s)) => format!("HELP {s}"),
        Command::Unknown(v) => v.clone(),
    }
}

fn render_params(params: &[Param]) -> String {
    let mut out = String::new();
    for p in params {
        out.push(' ');
        out.push_str(&p.keyword);
        if let Some(v) = &p.value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

fn no_args(rest: &str, command: Command) -> Result<Command, ParseError> {
    if rest.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::Arguments("this command takes no parameters"))
    }
}

fn one_word(rest: &str, why: &'static str) -> Result<String, ParseError> {
    if rest.is_empty() || rest.contains([' ', '\t']) {
        return Err(ParseError::Arguments(why));
    }
    Ok(rest.to_string())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `<path> [SP param]*`. RFC 5321 §4.1.2 has no space after the colon, but many clients send one, so it is
/// tolerated (as Postfix and Exim do). The path may contain a quoted local part with spaces and escaped '>'.
fn path_and_params(s: &str) -> Result<(String, Vec<Param>), ParseError> {
    let s = s.trim_start_matches([' ', '\t']);
    let inner = s
        .strip_prefix('<')
        .ok_or(ParseError::Arguments("path must be in angle brackets"))?;
    let mut in_quote = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && in_quote {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        } else if c == '>' && !in_quote {
            end = Some(i);
            break;
        } else if c == '<' && !in_quote {
            return Err(ParseError::Arguments("'<' inside a path"));
        }
    }
    let end = end.ok_or(ParseError::Arguments("unterminated path"))?;
    let path = &inner[..end];
    if !in_quote_free_of_space(path) {
        return Err(ParseError::Arguments("white space in path"));
    }
    let rest = &inner[end + 1..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(ParseError::Arguments("garbage after path"));
    }
    let params = rest
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(param)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((path.to_string(), params))
}

/// White space is only allowed inside a quoted local part.
fn in_quote_free_of_space(path: &str) -> bool {
    let mut in_quote = false;
    let mut escaped = false;
    for c in path.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && in_quote {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        } else if (c == ' ' || c == '\t') && !in_quote {
            return false;
        }
    }
    true
}

/// RFC 5321 §4.1.2: `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`,
/// `esmtp-value = 1*(%d33-60 / %d62-126)` (RFC 6531 widens the value to UTF-8; we accept that).
fn param(word: &str) -> Result<Param, ParseError> {
    let (keyword, value) = match word.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (word, None),
    };
    let mut chars = keyword.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ParseError::Arguments("bad parameter keyword"));
    }
    if let Some(v) = value
        && (v.is_empty() || v.contains('='))
    {
        return Err(ParseError::Arguments("bad parameter value"));
    }
    Ok(Param {
        keyword: keyword.to_ascii_uppercase(),
        value: value.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_usual_commands() {
        assert_eq!(parse(b"ehlo client.test\r\n"), Ok(Command::Ehlo("client.test".into())));
        assert_eq!(
            parse(b"MAIL FROM:<a@b.test> SIZE=10 BODY=8BITMIME"),
            Ok(Command::Mail {
                path: "a@b.test".into(),
                params: vec![
                    Param {
                        keyword: "SIZE".into(),
                        value: Some("10".into())
                    },
                    Param {
                        keyword: "BODY".into(),
                        value: Some("8BITMIME".into())
                    },
                ],
            })
        );
        assert_eq!(
            parse(b"mail from: <>"),
            Ok(Command::Mail {
                path: String::new(),
                params: vec![]
            })
        );
        assert_eq!(
            parse(b"RCPT TO:<\"john doe\"@x.test>"),
            Ok(Command::Rcpt {
                path: "\"john doe\"@x.test".into(),
                params: vec![]
            })
        );
        assert_eq!(parse(b"StartTLS"), Ok(Command::StartTls));
        assert_eq!(parse(b"NOOP whatever"), Ok(Command::Noop));
        assert_eq!(parse(b"XYZZY plugh"), Ok(Command::Unknown("XYZZY".into())));
    }

    #[test]
    fn rejects_bad_lines_with_the_right_code() {
        assert_eq!(parse(b"").unwrap_err().reply_code(), 500);
        assert_eq!(parse(b"   ").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\xff\xfe").unwrap_err(), ParseError::NotUtf8);
        assert_eq!(parse(b"NOOP\0").unwrap_err(), ParseError::ControlCharacter);
        assert_eq!(parse(b"STARTTLS now").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"RCPT TO:<>").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"MAIL FROM:a@b").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"MAIL FROM:<a@b").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"MAIL FROM:<a b@c>").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"MAIL FROM:<a@b>X").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"MAIL FROM:<a@b> =x").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"EHLO").unwrap_err().reply_code(), 501);
        assert_eq!(parse(b"EHLO a b").unwrap_err().reply_code(), 501);
    }

    fn word() -> impl Strategy<Value = String> {
        "[A-Za-z0-9.\\-\\[\\]:]{1,30}"
    }

    fn address() -> impl Strategy<Value = String> {
        "[a-z0-9.+\\-]{1,16}@[a-z0-9.\\-]{1,16}"
    }

    fn params() -> impl Strategy<Value = Vec<Param>> {
        proptest::collection::vec(
            ("[A-Z0-9][A-Z0-9\\-]{0,8}", proptest::option::of("[!-<>-~]{1,12}"))
                .prop_map(|(keyword, value)| Param { keyword, value }),
            0..4,
        )
    }

    fn free_text() -> impl Strategy<Value = String> {
        // Starts and ends with a visible character, so trimming does not change it.
        "[!-~]([ !-~]{0,20}[!-~])?"
    }

    fn command() -> impl Strategy<Value = Command> {
        const KNOWN: [&str; 12] = [
            "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "STARTTLS", "VRFY", "EXPN", "HELP",
        ];
        prop_oneof![
            word().prop_map(Command::Ehlo),
            word().prop_map(Command::Helo),
            (prop_oneof![Just(String::new()), address()], params())
                .prop_map(|(path, params)| Command::Mail { path, params }),
            (address(), params()).prop_map(|(path, params)| Command::Rcpt { path, params }),
            Just(Command::Data),
            Just(Command::Rset),
            Just(Command::Noop),
            Just(Command::Quit),
            Just(Command::StartTls),
            free_text().prop_map(Command::Vrfy),
            free_text().prop_map(Command::Expn),
            proptest::option::of(free_text()).prop_map(Command::Help),
            "[A-Za-z]{1,10}"
                .prop_filter("not a known verb", |v| !KNOWN
                    .contains(&v.to_ascii_uppercase().as_str()))
                .prop_map(Command::Unknown),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Err(e) = parse(&bytes) {
                prop_assert!(matches!(e.reply_code(), 500 | 501));
            }
        }

        #[test]
        fn arbitrary_text_lines_never_panic(line in "[ -~\\t]{0,200}") {
            for candidate in [line.clone(), format!("MAIL FROM:{line}"), format!("RCPT TO:<{line}")] {
                match parse(candidate.as_bytes()) {
                    // Printable ASCII is never refused as non-UTF-8 or for control characters.
                    Err(e) => prop_assert!(matches!(e, ParseError::Empty | ParseError::Arguments(_)), "{e:?}"),
                    Ok(Command::Mail { path, .. } | Command::Rcpt { path, .. }) => {
                        prop_assert!(!path.contains(['<', '>']) || path.contains('"'));
                    }
                    Ok(_) => {}
                }
            }
        }

        #[test]
        fn render_then_parse_round_trips(cmd in command()) {
            let line = render(&cmd);
            prop_assert_eq!(parse(line.as_bytes()), Ok(cmd.clone()));
            prop_assert_eq!(parse(format!("{line}\r\n").as_bytes()), Ok(cmd));
        }
    }
}
