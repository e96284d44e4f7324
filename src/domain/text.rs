//! Outside text made safe to show where people read: log lines and terminal output (DESIGN §7).
//! A `\n` in an affiliate's name must not start a forged line, an ESC must not drive a terminal.
use std::{borrow::Cow, fmt};

/// Whether `c` may not be written raw where people read: C0 and C1 controls, DEL, and the Unicode
/// line separators and bidi controls that break or reorder what a terminal shows.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text shown with its unsafe characters ([`is_unsafe`]) as visible escapes: `\n`, `\r`, `\t`,
/// otherwise `\u{1b}`; everything else (backslashes included) as it is.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        Escaper(f).write_str(self.0)
    }
}

/// `text` with its unsafe characters escaped; borrowed when there are none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_unsafe) {
        Cow::Owned(Escaped(text).to_string())
    } else {
        Cow::Borrowed(text)
    }
}

/// A `fmt::Write` that escapes everything written through it, as [`Escaped`] does.
pub struct Escaper<W>(pub W);

impl<W: fmt::Write> fmt::Write for Escaper<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(is_unsafe) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(escape("Alice Ünal \\n"), Cow::Borrowed("Alice Ünal \\n"));
        assert_eq!(
            escape("Eve\n2026-11-30T00:00:00Z  INFO forged\x1b[31m\r\t\u{7f}\u{9b}\u{202e}"),
            "Eve\\n2026-11-30T00:00:00Z  INFO forged\\u{1b}[31m\\r\\t\\u{7f}\\u{9b}\\u{202e}"
        );
        assert_eq!(Escaped("a\u{2028}b").to_string(), "a\\u{2028}b");
    }
}

/// `text` as every database can store it: PostgreSQL refuses a NUL in text, so a NUL from outside
/// (an affiliate name from the program's roster, an id in Amazon's report) becomes U+FFFD, the
/// replacement character, instead of failing the write (and the job) forever.
pub fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod storable_tests {
    use super::storable;

    #[test]
    fn a_nul_becomes_the_replacement_character_and_the_rest_stays() {
        assert_eq!(storable("Ann\0a"), "Ann\u{FFFD}a");
        assert_eq!(storable("\0"), "\u{FFFD}");
        assert!(matches!(
            storable("Anna ☃"),
            std::borrow::Cow::Borrowed("Anna ☃")
        ));
    }
}
