//! Parses Prometheus text with an independent implementation, Python's
//! `prometheus_client.parser`, so the tests check `/metrics` against a real
//! parser rather than against our own idea of the format.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The version scripts/test installs.
pub const PROMETHEUS_CLIENT: &str = "prometheus-client==0.26.0";

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = []
for f in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": f.name,
        "type": f.type,
        "help": f.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples],
    })
json.dump(families, sys.stdout)
"#;

/// One sample as the parser read it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One family: its name (a counter's without `_total`, as the parser names
/// it), type, help and samples.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub help: String,
    pub samples: Vec<Sample>,
}

/// What the parser made of a scrape.
#[derive(Debug)]
pub struct Scrape {
    pub families: Vec<Family>,
}

impl Scrape {
    /// Parses `text`; fails, saying how to install it, when the parser is missing.
    pub fn parse(text: &str) -> Scrape {
        let families: Value = serde_json::from_str(&run_parser(text))
            .unwrap_or_else(|e| panic!("the parser's output is not JSON: {e}"));
        let families = families
            .as_array()
            .expect("a list of families")
            .iter()
            .map(family)
            .collect();
        Scrape { families }
    }

    /// The family called `name`.
    pub fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}; have {:?}", self.names()))
    }

    /// Every sample, across families.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.iter().flat_map(|f| &f.samples)
    }

    /// The value of the one sample called `name` whose labels are exactly `labels`.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<&Sample> = self
            .samples()
            .filter(|s| s.name == name && s.labels == wanted)
            .collect();
        match found.as_slice() {
            [one] => one.value,
            _ => panic!(
                "{} samples {name}{wanted:?}; samples of that name: {:?}",
                found.len(),
                self.samples()
                    .filter(|s| s.name == name)
                    .map(|s| &s.labels)
                    .collect::<Vec<_>>()
            ),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.families.iter().map(|f| f.name.as_str()).collect()
    }
}

fn run_parser(text: &str) -> String {
    let install = format!(
        "the /metrics tests parse with Python's prometheus_client: install it with \
         `python3 -m pip install {PROMETHEUS_CLIENT}` (scripts/test does)"
    );
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {install}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("feed the parser");
    let out = child.wait_with_output().expect("wait for the parser");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        panic!("{install}");
    }
    assert!(
        out.status.success(),
        "the parser refused the text: {stderr}\ntext:\n{text}"
    );
    String::from_utf8(out.stdout).expect("UTF-8 from the parser")
}

fn family(v: &Value) -> Family {
    let text = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
    Family {
        name: text("name"),
        kind: text("type"),
        help: text("help"),
        samples: v["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(sample)
            .collect(),
    }
}

fn sample(v: &Value) -> Sample {
    let labels = v["labels"]
        .as_object()
        .expect("labels")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    Sample {
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        labels,
        value: v["value"].as_f64().expect("a numeric value"),
    }
}
