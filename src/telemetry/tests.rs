use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn counts(created: usize, updated: usize, deleted: usize) -> PlanCounts {
    PlanCounts {
        created,
        updated,
        deleted,
        ..PlanCounts::default()
    }
}

/// The sample lines whose series starts with `prefix` (name and opening of labels).
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn every_outcome_indexes_its_own_label() {
    for outcome in [
        RunOutcome::Applied,
        RunOutcome::Held,
        RunOutcome::Failed(FailureKind::Store),
        RunOutcome::DryRun,
    ] {
        assert_eq!(OUTCOMES[outcome.index()], outcome.as_str());
    }
}

#[test]
fn runs_count_by_outcome_and_failures_by_kind() {
    let m = Metrics::new();
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let none = PlanCounts::default();
    let second = Duration::from_secs(1);
    m.run_finished("crm", RunOutcome::Applied, &none, 0, 0, second, at);
    m.run_finished("crm", RunOutcome::Applied, &none, 0, 0, second, at);
    let unreachable = RunOutcome::Failed(FailureKind::SourceUnreachable);
    m.run_finished("crm", unreachable, &none, 0, 0, second, at);
    let text = m.encode();
    assert_eq!(
        lines(&text, "liaison_runs_total{"),
        [
            "liaison_runs_total{source=\"crm\",outcome=\"applied\"} 2",
            "liaison_runs_total{source=\"crm\",outcome=\"dry_run\"} 0",
            "liaison_runs_total{source=\"crm\",outcome=\"failed\"} 1",
            "liaison_runs_total{source=\"crm\",outcome=\"held\"} 0",
        ]
    );
    assert!(text
        .contains("\nliaison_run_failures_total{source=\"crm\",kind=\"source_unreachable\"} 1\n"));
    assert_eq!(
        lines(&text, "liaison_run_failures_total{").len(),
        FailureKind::ALL.len()
    );
}

#[test]
fn changes_and_held_deprovisions_count_only_for_runs_that_applied() {
    let m = Metrics::new();
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let d = Duration::from_millis(40);
    m.run_finished("hr", RunOutcome::Applied, &counts(3, 1, 0), 2, 0, d, at);
    m.run_finished("hr", RunOutcome::Held, &counts(1, 0, 0), 0, 7, d, at);
    m.run_finished("hr", RunOutcome::DryRun, &counts(50, 50, 50), 1, 9, d, at);
    let bad = RunOutcome::Failed(FailureKind::BadRows);
    m.run_finished("hr", bad, &counts(50, 0, 0), 4, 0, d, at);
    let text = m.encode();
    assert_eq!(
        lines(&text, "liaison_changes_total{"),
        [
            "liaison_changes_total{source=\"hr\",kind=\"created\"} 4",
            "liaison_changes_total{source=\"hr\",kind=\"deleted\"} 0",
            "liaison_changes_total{source=\"hr\",kind=\"disabled\"} 0",
            "liaison_changes_total{source=\"hr\",kind=\"enabled\"} 0",
            "liaison_changes_total{source=\"hr\",kind=\"updated\"} 1",
        ]
    );
    assert!(text.contains("\nliaison_deprovisions_held_total{source=\"hr\"} 7\n"));
    assert!(text.contains("\nliaison_row_errors_total{source=\"hr\"} 7\n"));
    assert!(text.contains("\nliaison_run_duration_seconds_count{source=\"hr\"} 4\n"));
}

#[test]
fn the_last_success_moves_only_with_runs_that_applied() {
    let m = Metrics::new();
    let none = PlanCounts::default();
    let d = Duration::ZERO;
    let first = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
    let later = first + Duration::from_secs(60);
    m.run_finished("s", RunOutcome::Held, &none, 0, 0, d, first);
    let failed = RunOutcome::Failed(FailureKind::Cancelled);
    m.run_finished("s", failed, &none, 0, 0, d, later);
    let text = m.encode();
    assert!(
        text.contains("\nliaison_last_success_timestamp_seconds{source=\"s\"} 1700000000.5\n"),
        "{text}"
    );
}

#[test]
fn a_configured_source_shows_zeroed_series_before_its_first_run() {
    let m = Metrics::new();
    m.source_configured("ldap");
    let text = m.encode();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with("liaison_build_info") {
            continue;
        }
        assert!(line.contains("source=\"ldap\""), "{line}");
        assert!(line.ends_with(" 0"), "not zero: {line}");
    }
    assert!(text.contains("\nliaison_run_duration_seconds_bucket{source=\"ldap\",le=\"+Inf\"} 0\n"));
}

#[test]
fn families_print_sorted_by_name_each_with_help_and_type() {
    let m = Metrics::new();
    m.source_configured("b");
    m.source_configured("a");
    m.set_outbox("queued", 3);
    m.mail_dispatched("welcome", 1, 0);
    let text = m.encode();
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    assert_eq!(types.len(), 11, "{text}");
    assert_eq!(helps, types.len());
    let mut sorted = types.clone();
    sorted.sort_unstable();
    assert_eq!(types, sorted);
    let runs = lines(&text, "liaison_runs_total{");
    assert!(runs[0].contains("source=\"a\"") && runs[4].contains("source=\"b\""));
    assert_eq!(text, m.encode(), "the same state prints the same text");
}

#[test]
fn the_outbox_gauge_holds_the_last_depth_per_state() {
    let m = Metrics::new();
    m.set_outbox("queued", 3);
    m.set_outbox("failed", 1);
    m.set_outbox("queued", 0);
    let text = m.encode();
    assert_eq!(
        lines(&text, "liaison_outbox_messages{"),
        [
            "liaison_outbox_messages{state=\"failed\"} 1",
            "liaison_outbox_messages{state=\"queued\"} 0",
        ]
    );
}

#[test]
fn mail_counters_add_up_by_kind() {
    let m = Metrics::new();
    m.mail_dispatched("welcome", 3, 1);
    m.mail_dispatched("registration_confirmation", 2, 0);
    m.mail_dispatched("welcome", 4, 0);
    let text = m.encode();
    assert_eq!(
        lines(&text, "liaison_mail_sent_total{"),
        [
            "liaison_mail_sent_total{kind=\"registration_confirmation\"} 2",
            "liaison_mail_sent_total{kind=\"welcome\"} 7",
        ]
    );
    assert_eq!(
        lines(&text, "liaison_mail_failed_total{"),
        [
            "liaison_mail_failed_total{kind=\"registration_confirmation\"} 0",
            "liaison_mail_failed_total{kind=\"welcome\"} 1",
        ]
    );
}

#[test]
fn build_info_names_the_crate_version() {
    let text = Metrics::new().encode();
    let expected = format!(
        "liaison_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&expected), "{text}");
}

#[test]
fn a_source_name_with_quotes_is_escaped_in_every_family() {
    let m = Metrics::new();
    m.source_configured("odd \"name\"");
    let text = m.encode();
    assert!(!text.contains("odd \"name\""));
    assert!(text.contains("source=\"odd \\\"name\\\"\""));
}

#[test]
fn metrics_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Metrics>();
}

fn report(status: RunStatus, failure: Option<crate::sync::RunFailure>) -> RunReport {
    RunReport {
        source: "crm".into(),
        status,
        plan: crate::reconcile::Plan::default(),
        counts: PlanCounts {
            created: 2,
            held: 3,
            ..PlanCounts::default()
        },
        errors: Vec::new(),
        failure,
        read: None,
    }
}

#[test]
fn a_report_gives_its_outcome_and_counts() {
    let auth = crate::sync::RunFailure::new(FailureKind::SourceAuth, "refused");
    assert_eq!(
        RunOutcome::from_report(&report(RunStatus::Failed, Some(auth))),
        RunOutcome::Failed(FailureKind::SourceAuth)
    );
    assert_eq!(
        RunOutcome::from_report(&report(RunStatus::DryRun, None)),
        RunOutcome::DryRun
    );
    let m = Metrics::new();
    let at = UNIX_EPOCH + Duration::from_secs(10);
    m.run_reported(&report(RunStatus::Held, None), Duration::from_secs(2), at);
    let text = m.encode();
    assert!(text.contains("\nliaison_runs_total{source=\"crm\",outcome=\"held\"} 1\n"));
    assert!(text.contains("\nliaison_changes_total{source=\"crm\",kind=\"created\"} 2\n"));
    assert!(text.contains("\nliaison_deprovisions_held_total{source=\"crm\"} 3\n"));
    assert!(text.contains("\nliaison_last_success_timestamp_seconds{source=\"crm\"} 10\n"));
}

#[test]
fn a_removed_source_no_longer_shows() {
    let m = Metrics::new();
    m.source_configured("old");
    m.source_configured("kept");
    m.source_removed("old");
    let text = m.encode();
    assert!(!text.contains("source=\"old\""), "{text}");
    assert!(text.contains("source=\"kept\""));
}
