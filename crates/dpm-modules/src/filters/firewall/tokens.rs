//! The rule file's tokens, one line at a time: words separated by whitespace, `#` outside
//! quotes starts a comment, `'…'` and `"…"` quote a token (a backslash before the quote
//! character escapes it; any other backslash is kept with the character after it, so
//! regex escapes such as `\b` and `\\` arrive unchanged).

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tok {
    pub text: String,
    pub quoted: bool,
}

/// The tokens of `line` (without its newline).
pub fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut text = String::new();
        if c == '\'' || c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(d) = chars.next() {
                if d == c {
                    closed = true;
                    break;
                }
                if d == '\\' {
                    match chars.next() {
                        Some(e) if e == c => text.push(e),
                        Some(e) => {
                            text.push('\\');
                            text.push(e);
                        }
                        None => text.push('\\'),
                    }
                    continue;
                }
                text.push(d);
            }
            if !closed {
                return Err(format!("missing closing quote {c} in {c}{text}"));
            }
            if chars
                .peek()
                .is_some_and(|d| !d.is_whitespace() && *d != '#')
            {
                return Err(format!(
                    "unexpected text after the closing quote of {c}{text}{c}"
                ));
            }
            out.push(Tok { text, quoted: true });
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() || d == '#' {
                    break;
                }
                text.push(d);
                chars.next();
            }
            out.push(Tok {
                text,
                quoted: false,
            });
        }
    }
    Ok(out)
}
