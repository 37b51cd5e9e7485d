use super::*;
use flywheel_monitor::compare::Side;

fn delivery() -> Delivery {
    Delivery {
        approval: Approval::Auto,
        canary: 10,
        hold: Span::Requests(100),
        max_error_rate: 0.01,
        tolerance: 0.05,
        max_hold: Duration::from_secs(3600),
    }
}

fn observed(answered: u64, failed: u64, canary: Option<f64>, production: Option<f64>) -> Observed {
    let side = |m: Option<f64>| Side { rows: answered as usize, metric: m.map(|v| (v, 50)) };
    Observed {
        version: 3,
        loaded: true,
        since_start: Duration::from_secs(30),
        answered,
        failed,
        counted: answered,
        comparison: Comparison {
            metric: "rmse".into(),
            canary: side(canary),
            production: side(production),
            predictions: Some((0.05, 0.1, false)),
        },
        approval: ApprovalState::Pending,
        rejected_because: None,
        production: Some(1),
    }
}

#[test]
fn a_canary_holds_until_its_requests_are_in_then_is_promoted_when_no_worse() {
    let d = delivery();
    assert_eq!(judge(&d, &observed(99, 0, Some(60.0), Some(140.0))), Verdict::Hold("99 of 100 requests".into()));
    let Verdict::Promote(why) = judge(&d, &observed(100, 0, Some(60.0), Some(140.0))) else { panic!() };
    assert!(why.contains("rmse 60.0000 against production's 140.0000"), "{why}");
    // Within the tolerance (5% of 100) is no worse.
    assert!(matches!(judge(&d, &observed(100, 0, Some(104.9), Some(100.0))), Verdict::Promote(_)));
}

#[test]
fn a_worse_canary_is_rolled_back_with_its_figures() {
    let Verdict::RollBack(why) = judge(&delivery(), &observed(100, 0, Some(106.0), Some(100.0))) else { panic!() };
    assert!(why.contains("worse by more than 5%"), "{why}");
    // For a metric where higher is better, lower is worse.
    let mut o = observed(100, 0, Some(0.80), Some(0.90));
    o.comparison.metric = "accuracy".into();
    assert!(matches!(judge(&delivery(), &o), Verdict::RollBack(_)));
}

#[test]
fn a_failing_canary_is_rolled_back_at_once_not_after_its_hold() {
    // 3 failures in 5 requests: over 1% of the floor of 20, before the hold.
    let Verdict::RollBack(why) = judge(&delivery(), &observed(2, 3, None, None)) else { panic!() };
    assert!(why.contains("3 of 5 requests failed"), "{why}");
    // One failure in 200 is within 1%.
    assert!(matches!(judge(&delivery(), &observed(199, 1, Some(1.0), Some(1.0))), Verdict::Promote(_)));
    let mut o = observed(0, 0, None, None);
    o.loaded = false;
    assert!(matches!(judge(&delivery(), &o), Verdict::RollBack(w) if w.contains("not loaded")));
    o.since_start = Duration::from_secs(1);
    assert!(matches!(judge(&delivery(), &o), Verdict::Hold(_)));
    // Answers logged, not requests counted, hold it: the comparison needs them.
    let mut o = observed(150, 0, Some(60.0), Some(140.0));
    o.counted = 20;
    assert!(matches!(judge(&delivery(), &o), Verdict::Hold(p) if p == "20 of 100 requests"));
}

#[test]
fn never_promoted_on_no_evidence_while_there_is_a_production() {
    // No log (sampling off), or too few answers of each: held, not promoted.
    let mut o = observed(100, 0, None, None);
    o.comparison.predictions = None;
    assert!(matches!(judge(&delivery(), &o), Verdict::Hold(w) if w.contains("no comparison yet")));
    let mut o = observed(100, 0, None, None);
    o.comparison.production.rows = 3;
    assert!(matches!(judge(&delivery(), &o), Verdict::Hold(_)));
    // With no production at all, holding without failing is enough.
    o.production = None;
    assert!(matches!(judge(&delivery(), &o), Verdict::Promote(w) if w.contains("no production")));
}

#[test]
fn without_labels_the_predictions_distributions_decide() {
    let mut o = observed(100, 0, None, None);
    assert!(matches!(judge(&delivery(), &o), Verdict::Promote(w) if w.contains("distributed as production's")));
    o.comparison.predictions = Some((0.4, 0.1, true));
    assert!(matches!(judge(&delivery(), &o), Verdict::RollBack(w) if w.contains("drifted")));
}

#[test]
fn manual_approval_waits_for_a_person_and_a_rejection_rolls_back() {
    let d = Delivery { approval: Approval::Manual, ..delivery() };
    let mut o = observed(100, 0, Some(60.0), Some(140.0));
    assert!(matches!(judge(&d, &o), Verdict::AwaitApproval(_)));
    o.approval = ApprovalState::Approved;
    assert!(matches!(judge(&d, &o), Verdict::Promote(_)));
    o.approval = ApprovalState::Rejected;
    o.rejected_because = Some("not on a Friday".into());
    assert!(matches!(judge(&d, &o), Verdict::RollBack(w) if w.contains("rejected: not on a Friday")));
}

#[test]
fn a_time_hold_needs_its_time_and_some_traffic() {
    let d = Delivery { hold: Span::Time(Duration::from_secs(60)), ..delivery() };
    assert!(matches!(judge(&d, &observed(500, 0, None, None)), Verdict::Hold(p) if p == "30s of 60s"));
    let mut o = observed(0, 0, None, None);
    o.since_start = Duration::from_secs(61);
    assert!(matches!(judge(&d, &o), Verdict::Hold(_)));
    o.answered = 1;
    o.counted = 1;
    // One answer holds the time, but each version needs enough answers to compare.
    assert!(matches!(judge(&d, &o), Verdict::Hold(w) if w.contains("no comparison yet")));
    (o.comparison.canary.rows, o.comparison.production.rows) = (20, 20);
    assert!(matches!(judge(&d, &o), Verdict::Promote(_)));
}

#[test]
fn a_canary_without_a_verdict_after_max_hold_is_rolled_back_but_one_awaiting_approval_waits() {
    let d = Delivery { max_hold: Duration::from_secs(600), ..delivery() };
    let quiet = |secs| Observed { since_start: Duration::from_secs(secs), ..observed(3, 0, None, None) };
    assert_eq!(judge(&d, &quiet(599)), Verdict::Hold("3 of 100 requests".into()));
    let Verdict::RollBack(why) = judge(&d, &quiet(600)) else { panic!() };
    assert_eq!(why, "no verdict after 600s (3 of 100 requests); the deployment's `max_hold` is 600s");
    // Held its thresholds and waits for a person: not timed out.
    let manual = Delivery { approval: Approval::Manual, ..d };
    let ready = Observed { since_start: Duration::from_secs(7200), ..observed(100, 0, Some(60.0), Some(140.0)) };
    assert!(matches!(judge(&manual, &ready), Verdict::AwaitApproval(_)));
}
