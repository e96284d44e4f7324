//! Logging to stderr, human or JSON. `RUST_LOG` overrides `[log] level`.
//!
//! Outside text (store and affiliate names, ref codes, URLs, an OAuth `error_description`) reaches
//! log lines through messages and fields. The `pretty` format writes every message and field value
//! escaped ([`crate::domain::text::Escaped`]): a `\n` in a name cannot start a forged line, an ESC
//! cannot drive the operator's terminal (DESIGN §7). The `json` format escapes through serde.
use std::{fmt, io::IsTerminal};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    EnvFilter,
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::{MakeWriter, format::Writer},
    util::SubscriberInitExt,
};

use crate::{
    config::{LogFormat, LogSettings},
    domain::text::Escaper,
};

/// Targets that are never logged, whatever `RUST_LOG` says: sqlx's pgpass reader quotes the
/// lines of `~/.pgpass` (passwords) when it cannot parse them (DESIGN §7).
const NEVER: &[&str] = &["sqlx_postgres::options::pgpass=off"];

/// Installs the process-wide subscriber (a second call, as in tests, is harmless).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn", settings.level)));
    let ansi = std::io::stderr().is_terminal();
    let _ = subscriber(settings.format, filter, ansi, std::io::stderr).try_init();
}

/// The subscriber the service logs with: `filter` (plus [`NEVER`]) and `format`, written to
/// `writer`, with colours only when `ansi`. Tests capture their logs through it.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = NEVER.iter().fold(filter, |f, directive| {
        f.add_directive(directive.parse().expect("a valid directive"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => Box::new(builder.json().finish()),
        LogFormat::Pretty => Box::new(builder.fmt_fields(EscapedFields).finish()),
    }
}

/// The `pretty` format's fields: as tracing-subscriber's defaults (the message first, then
/// `name=value`), with every message and value escaped.
struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapedVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> Self::Visitor {
        EscapedVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        }
    }
}

struct EscapedVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl EscapedVisitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        use fmt::Write;
        let name = field.name();
        // Fields of `log` records, already shown as the line's target.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        if !std::mem::replace(&mut self.is_empty, false) {
            self.result = self.writer.write_char(' ');
        }
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self.result.and_then(|()| write!(self.writer, "{name}="));
        }
        self.result = self
            .result
            .and_then(|()| Escaper(&mut self.writer).write_fmt(value));
    }
}

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn outside_text_cannot_forge_a_line_in_the_pretty_format() {
        let out = Captured::default();
        let sink = out.clone();
        let log = subscriber(LogFormat::Pretty, EnvFilter::new("info"), true, move || {
            sink.clone()
        });
        let name = "Eve\n2026-11-30T00:00:00Z  INFO forged\x1b[31m";
        tracing::subscriber::with_default(log, || {
            let span = tracing::info_span!("store", name = %name);
            let _in = span.enter();
            tracing::warn!(error = %name, debug = ?name, plain = name, "refused {name}");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("refused Eve\\n2026-11-30T00:00:00Z  INFO forged\\u{1b}[31m"));
        assert!(text.contains("error=Eve\\n2026"), "{text}");
        assert!(!text.contains("forged\x1b"), "{text}");
    }
}
