//! Forwards a plugin's `tracing` events, and its panic messages, to the host's log.
//!
//! A `cdylib` carries its own copy of `tracing`, whose global subscriber is a different
//! variable from the host's; without this, every event a plugin emits would vanish. `init`
//! installs a subscriber in the plugin's copy that hands each event to the host's callback.
//! Spans do not cross: pass ids (image id, request id) as event fields instead.

use std::fmt::{self, Write};

use tracing::{
    field::{Field, Visit},
    level_filters::LevelFilter,
    span, Event, Level, Metadata, Subscriber,
};

use crate::abi::HostV1;

pub(crate) fn install(plugin: &'static str, host: HostV1) {
    let _ = tracing::subscriber::set_global_default(Forward { plugin, host });
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let msg = format!("panic{at}: {what}");
        (host.log)(plugin.into(), 1, "panic".into(), msg.as_str().into());
    }));
}

fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

struct Forward {
    plugin: &'static str,
    host: HostV1,
}

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_number(metadata.level()) <= self.host.max_level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.host.max_level {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        let meta = event.metadata();
        (self.host.log)(
            self.plugin.into(),
            level_number(meta.level()),
            meta.target().into(),
            text.message.as_str().into(),
        );
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// An event's message followed by its other fields as `key=value`.
#[derive(Default)]
struct Text {
    message: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

impl Text {
    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.message);
            let _ = write!(self.message, "{value}{rest}");
        } else {
            let _ = write!(self.message, " {}={value}", field.name());
        }
    }
}
