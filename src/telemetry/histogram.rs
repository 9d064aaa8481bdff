//! A fixed-bucket histogram, kept per bucket and printed cumulatively as
//! Prometheus wants (`_bucket{le=…}` counts every observation at or below `le`).

use super::text::{format_float, TextWriter, Value};

/// Upper bounds of the run-duration buckets, in seconds: from a no-op run of a
/// small file (about 10 ms) to a first import of a million rows (minutes; see
/// BENCHMARKS.md). Runs longer than 600 s land only in `+Inf`.
pub(crate) const RUN_DURATION_BUCKETS: [f64; 15] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Observations counted per bucket, their sum and their count.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket, not cumulative: `per_bucket[i]` counts values
    /// in `(bounds[i-1], bounds[i]]`; values above the last bound are only in
    /// `count`.
    per_bucket: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            per_bucket: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub(crate) fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&le| value <= le) {
            self.per_bucket[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    /// Writes `_bucket` (cumulative, ending in `+Inf`), `_sum` and `_count`,
    /// each with `labels` first.
    pub(crate) fn write(&self, w: &mut TextWriter, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let bounds: Vec<String> = self.bounds.iter().map(|&le| format_float(le)).collect();
        let mut cumulative = 0;
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        for (le, n) in bounds.iter().zip(&self.per_bucket) {
            cumulative += n;
            with_le.push(("le", le));
            w.sample(&bucket, &with_le, Value::Int(cumulative));
            with_le.pop();
        }
        with_le.push(("le", "+Inf"));
        w.sample(&bucket, &with_le, Value::Int(self.count));
        w.sample(&format!("{name}_sum"), labels, Value::Float(self.sum));
        w.sample(&format!("{name}_count"), labels, Value::Int(self.count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];

    #[test]
    fn buckets_are_cumulative_and_end_in_inf_equal_to_count() {
        let mut h = Histogram::new(&BOUNDS);
        for v in [0.05, 0.1, 0.5, 7.0, 99.0] {
            h.observe(v);
        }
        let mut w = TextWriter::default();
        h.write(&mut w, "d_seconds", &[("source", "s")]);
        assert_eq!(
            w.finish(),
            "d_seconds_bucket{source=\"s\",le=\"0.1\"} 2\n\
             d_seconds_bucket{source=\"s\",le=\"1\"} 3\n\
             d_seconds_bucket{source=\"s\",le=\"10\"} 4\n\
             d_seconds_bucket{source=\"s\",le=\"+Inf\"} 5\n\
             d_seconds_sum{source=\"s\"} 106.65\n\
             d_seconds_count{source=\"s\"} 5\n"
        );
    }

    #[test]
    fn an_empty_histogram_prints_zeroes() {
        let h = Histogram::new(&BOUNDS);
        let mut w = TextWriter::default();
        h.write(&mut w, "d", &[]);
        let text = w.finish();
        assert!(text.starts_with("d_bucket{le=\"0.1\"} 0\n"), "{text}");
        assert!(text.ends_with("d_sum 0\nd_count 0\n"), "{text}");
    }

    #[test]
    fn the_run_duration_bounds_ascend() {
        assert!(RUN_DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(RUN_DURATION_BUCKETS.first(), Some(&0.01));
        assert_eq!(RUN_DURATION_BUCKETS.last(), Some(&600.0));
    }
}
