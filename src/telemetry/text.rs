//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE`
//! lines, then one line per sample. Small enough to own (decision 0015).

use std::fmt::Write as _;

/// A metric family's type, as the `# TYPE` line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value: counts print as integers, measurements as floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
}

/// Writes families one after another into a string.
#[derive(Debug, Default)]
pub(crate) struct TextWriter {
    out: String,
}

impl TextWriter {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(&mut self.out, help);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// One sample line: `name{label="value",…} value`.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: Value) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label_value(&mut self.out, text);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// The text written so far.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A float as the format spells it: `+Inf`, `-Inf`, `NaN`, or the shortest
/// decimal that reads back as the same number.
pub(crate) fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

fn push_value(out: &mut String, value: Value) {
    match value {
        // Writing into a String cannot fail.
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) => out.push_str(&format_float(x)),
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and line feed (a quote stays as it is).
fn escape_help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut w = TextWriter::default();
        w.sample(
            "m_total",
            &[("source", "a\\b\"c\nd"), ("kind", "x")],
            Value::Int(3),
        );
        assert_eq!(
            w.finish(),
            "m_total{source=\"a\\\\b\\\"c\\nd\",kind=\"x\"} 3\n"
        );
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut w = TextWriter::default();
        w.family("m", Kind::Gauge, "say \"hi\"\nC:\\");
        assert_eq!(w.finish(), "# HELP m say \"hi\"\\nC:\\\\\n# TYPE m gauge\n");
    }

    #[test]
    fn floats_print_as_the_format_spells_them() {
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(600.0), "600");
        assert_eq!(format_float(0.025), "0.025");
        assert_eq!(format_float(1e-7).parse::<f64>().ok(), Some(1e-7));
    }

    #[test]
    fn a_sample_without_labels_has_no_braces() {
        let mut w = TextWriter::default();
        w.sample("m_sum", &[], Value::Float(1.5));
        assert_eq!(w.finish(), "m_sum 1.5\n");
    }
}
