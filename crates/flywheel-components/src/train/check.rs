//! What `train` can know about its parameters before any data is read:
//! transforms that no column could take, feature lists that contradict
//! each other, settings out of range. `tune` checks its fixed and searched
//! values with the same function.

use super::Params;
use flywheel_core::ParamProblem;
use flywheel_ml::transform::ColumnTransformConfig;
use flywheel_ml::{Column, Text};
use std::collections::BTreeMap;

/// Every problem in `params`, each at the parameter (or key) it is about.
pub(super) fn check(params: &Params) -> Vec<ParamProblem> {
    let mut out = check_transforms(&params.transform);
    out.extend(check_columns(params));
    out.extend(check_settings(params));
    out
}

/// Each declared transform fitted on a tiny column of numbers and one of
/// dates (text): one that fails on both fails whatever the column holds,
/// with the same words the run would use. What depends on the data (a
/// column with no values at all) is left to the run.
fn check_transforms(declared: &BTreeMap<String, String>) -> Vec<ParamProblem> {
    declared
        .iter()
        .filter_map(|(column, text)| {
            let message = transform_error(column, text)?;
            Some(ParamProblem::value(&["transform", column], message))
        })
        .collect()
}

/// Steps for numbers only and encoders for text only.
const NUMBER_STEPS: &[&str] = &["impute", "clip", "log1p", "passthrough", "standardize", "minmax", "bucketize"];
const TEXT_ENCODERS: &[&str] = &["onehot", "hash", "ordinal"];

fn transform_error(column: &str, text: &str) -> Option<String> {
    let config = match ColumnTransformConfig::parse(column, text) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let numbers = Column::Num(vec![0.0, 1.0]);
    let dates = Column::Text(Text { values: vec!["2011-01-01".into(), "2011-01-02 13:00".into()], codes: vec![0, 1] });
    let as_numbers = config.fit(&numbers).err()?;
    let as_text = config.fit(&dates).err()?;
    let ops: Vec<&str> = config.ops.iter().map(|o| o.name.as_str()).filter(|n| *n != "indicator").collect();
    let number_step = ops.iter().find(|o| NUMBER_STEPS.contains(o));
    let encoder = ops.iter().find(|o| TEXT_ENCODERS.contains(o));
    if let (Some(n), Some(t)) = (number_step, encoder) {
        // Either message would guess the column's type; say what is wrong.
        return Some(format!(
            "transform of `{column}` (\"{text}\"): `{n}` is a step for numbers and `{t}` an encoder for text; a number column takes number steps, a text column one encoder"
        ));
    }
    let text_first = ops.first().is_some_and(|o| TEXT_ENCODERS.contains(o));
    Some(if text_first { as_text } else { as_numbers }.to_string())
}

/// The feature list, `drop` and transforms must agree with each other and
/// with the target, as the run requires.
fn check_columns(params: &Params) -> Vec<ParamProblem> {
    let mut out = Vec::new();
    let target = Some(params.target.as_str());
    let features: Option<Vec<&str>> = params.features.as_ref().map(|f| f.iter().map(String::as_str).collect());
    let drop: Vec<&str> = params.drop.iter().map(String::as_str).collect();
    if let Some(features) = &features {
        if features.is_empty() {
            out.push(ParamProblem::value(&["features"], "`features` is empty: no feature columns left to train on"));
        }
        for (i, f) in features.iter().enumerate() {
            if Some(*f) == target {
                out.push(ParamProblem::value(
                    &["features", &i.to_string()],
                    format!("the target `{f}` cannot also be a feature"),
                ));
            }
        }
    }
    for column in params.transform.keys() {
        let why = match &features {
            Some(f) if !f.contains(&column.as_str()) => {
                let hint = flywheel_core::did_you_mean(column, f.iter().copied());
                Some(format!("a transform is declared for `{column}`, which is not in `features`{hint}"))
            }
            _ if Some(column.as_str()) == target => {
                Some(format!("a transform is declared for `{column}`, the target; only features are transformed"))
            }
            None if drop.contains(&column.as_str()) => {
                Some(format!("a transform is declared for `{column}`, which `drop` leaves out"))
            }
            _ => None,
        };
        out.extend(why.map(|w| ParamProblem::key(&["transform", column], w)));
    }
    out
}

/// Numbers out of the range the trainers accept.
fn check_settings(p: &Params) -> Vec<ParamProblem> {
    let mut out = Vec::new();
    // Counts that must be at least 1 (trainers refuse less, or mean nothing by it).
    let counts = [
        ("max_iterations", p.max_iterations),
        ("max_leaf_nodes", p.max_leaf_nodes),
        ("max_depth", p.max_depth),
        ("min_samples_leaf", p.min_samples_leaf),
        ("n_estimators", p.n_estimators),
        ("max_features", p.max_features),
    ];
    for (name, value) in counts {
        if let Some(v) = value
            && v < 1
        {
            out.push(ParamProblem::value(&[name], format!("`{name}` must be at least 1, not {v}")));
        }
    }
    let mut positive = |name: &str, value: Option<f64>, zero_ok: bool| {
        if let Some(v) = value
            && (v < 0.0 || (v == 0.0 && !zero_ok))
        {
            let least = if zero_ok { "≥ 0" } else { "above 0" };
            out.push(ParamProblem::value(&[name], format!("`{name}` must be {least}, not {v}")));
        }
    };
    positive("c", Some(p.c), false);
    positive("learning_rate", p.learning_rate, false);
    positive("tolerance", p.tolerance, false);
    positive("alpha", Some(p.alpha), true);
    positive("l2_regularization", p.l2_regularization, true);
    // Boosting grows trees by splitting leaves: one leaf is no tree.
    if p.model == "gbt"
        && let Some(v) = p.max_leaf_nodes
        && v == 1
    {
        out.push(ParamProblem::value(&["max_leaf_nodes"], "gbt: `max_leaf_nodes` must be at least 2, not 1"));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    fn problems(v: Json) -> Vec<String> {
        flywheel_core::Component::check_params(&super::super::Train, v.as_object().unwrap())
            .into_iter()
            .map(|p| format!("{}: {}", p.path.join("."), p.message))
            .collect()
    }

    #[test]
    fn transforms_no_column_could_take_are_refused_and_valid_ones_pass() {
        let ok = json!({ "transform": {
            "a": "impute(median) | clip(0, 10) | standardize", "b": "onehot(top = 5)", "c": "datetime(hour, month)",
            "d": "indicator | bucketize(4)", "e": "hash(buckets = 8)", "f": "log1p | minmax",
        }});
        assert_eq!(problems(ok), Vec::<String>::new());
        let bad = json!({ "transform": {
            "a": "impute(middle)", "b": "onehot(top = 0)", "c": "datetime(hourz)", "d": "standardise",
            "e": "bucketize | standardize", "f": "clip(5, 1)", "g": "impute(mean) | onehot",
        }});
        let p = problems(bad);
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(p[0].starts_with("transform.a: ") && p[0].contains("`middle`"), "{}", p[0]);
        assert!(p[1].contains("whole number ≥ 1, not `0`"), "{}", p[1]);
        assert!(p[2].contains("did you mean `hour`?"), "{}", p[2]);
        assert!(p[3].contains("did you mean `standardize`?"), "{}", p[3]);
        assert!(p[4].contains("must be the last step"), "{}", p[4]);
        assert!(p[5].contains("above its high bound"), "{}", p[5]);
        assert!(p[6].contains("`impute` is a step for numbers and `onehot` an encoder for text"), "{}", p[6]);
    }

    #[test]
    fn features_drop_and_transforms_must_agree() {
        let p = problems(json!({
            "target": "y", "features": ["a", "y"], "transform": { "b": "onehot", "a": "standardize" },
        }));
        assert_eq!(
            p,
            [
                "features.1: the target `y` cannot also be a feature",
                "transform.b: a transform is declared for `b`, which is not in `features`; did you mean `a`?"
            ]
        );
        let p = problems(json!({ "target": "y", "drop": ["z"], "transform": { "y": "standardize", "z": "onehot" } }));
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let p = problems(json!({ "model": "gbt", "max_depth": 0, "learning_rate": 0.0, "alpha": -1.0 }));
        assert_eq!(
            p,
            [
                "max_depth: `max_depth` must be at least 1, not 0",
                "learning_rate: `learning_rate` must be above 0, not 0",
                "alpha: `alpha` must be ≥ 0, not -1",
            ]
        );
        assert_eq!(
            problems(json!({ "model": "gbt", "max_leaf_nodes": 1 })),
            ["max_leaf_nodes: gbt: `max_leaf_nodes` must be at least 2, not 1"]
        );
    }
}
