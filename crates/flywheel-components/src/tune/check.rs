//! What `tune` can know before any data is read: the searched and fixed
//! parameters are `train`'s, each range parses, every value a trial could
//! take is one `train` accepts, and the metric is one `evaluate` reports.

use super::{Dimension, Params, parse_dimension, train_param_names};
use crate::evaluate::check_metric;
use flywheel_core::ParamProblem;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

pub(super) fn check(params: &Params) -> Vec<ParamProblem> {
    // Names that are not `train`'s are reported below, not by `train`.
    let known = train_param_names();
    let base: Map<String, Json> = params.base().into_iter().filter(|(k, _)| known.contains(&k.as_str())).collect();
    let mut out = check_model(params);
    // What `train` finds in the parameters every trial shares.
    for p in train_problems(&base) {
        let key = p.path.first().cloned().unwrap_or_default();
        out.push(if params.fixed.contains_key(&key) { relocate(p, "fixed", &key) } else { p });
    }
    out.extend(check_fixed_names(&params.fixed));
    out.extend(check_space(&params.space, &base));
    if let Some(m) = &params.metric {
        out.extend(check_metric(&["metric"], m).map(|p| ParamProblem { at_key: false, ..p }));
    }
    for (name, lo, hi, v) in [("folds", 2, 50, params.folds), ("trials", 1, 10_000, params.trials)] {
        if !(lo..=hi).contains(&v) {
            out.push(ParamProblem::value(&[name], format!("`{name}` must be between {lo} and {hi}, not {v}")));
        }
    }
    out
}

/// `train`'s own check of a trial's parameters.
fn train_problems(params: &Map<String, Json>) -> Vec<ParamProblem> {
    flywheel_core::params::check(&crate::train::Train, params)
}

/// `tune`'s `model` is `train`'s, checked as `train` checks it.
fn check_model(params: &Params) -> Vec<ParamProblem> {
    let (Some(model), Some(spec)) = (&params.model, crate::train::SPEC.param("model")) else { return Vec::new() };
    spec.ty.check(&Json::from(model.as_str())).err().map(|e| ParamProblem::value(&["model"], e)).into_iter().collect()
}

/// A problem `train` found in its parameter `name`, moved to `tune`'s `key.name`.
fn relocate(p: ParamProblem, key: &str, name: &str) -> ParamProblem {
    let mut path = vec![key.to_string(), name.to_string()];
    path.extend(p.path.into_iter().skip(1));
    ParamProblem { path, at_key: false, message: format!("`{key}.{}", p.message.trim_start_matches('`')), ..p }
}

fn check_fixed_names(fixed: &BTreeMap<String, String>) -> Vec<ParamProblem> {
    let known = train_param_names();
    fixed
        .keys()
        .filter(|n| !known.contains(&n.as_str()))
        .map(|n| {
            ParamProblem::key(&["fixed", n], format!("`fixed.{n}` is not a `train` parameter"))
                .help(flywheel_core::did_you_mean(n, known.iter().copied()).trim_start_matches("; ").to_string())
        })
        .collect()
}

/// Each dimension parses, and its ends (or each listed value) are values
/// `train` accepts with everything else a trial shares.
fn check_space(space: &BTreeMap<String, String>, base: &Map<String, Json>) -> Vec<ParamProblem> {
    if space.is_empty() {
        return vec![ParamProblem::value(&["space"], "`space` is empty; name at least one train parameter to search")];
    }
    let known = train_param_names();
    let mut out = Vec::new();
    for (name, spec) in space {
        if !known.contains(&name.as_str()) || matches!(name.as_str(), "target" | "features" | "drop") {
            let hint = flywheel_core::did_you_mean(name, known.iter().copied());
            out.push(
                ParamProblem::key(&["space", name], format!("`space.{name}` is not a parameter `train` can search"))
                    .help(hint.trim_start_matches("; ").to_string()),
            );
            continue;
        }
        let values = match parse_dimension(name, spec) {
            Ok(Dimension::Values(v)) => v,
            Ok(d) => vec![d.value_at(0.0), d.value_at(1.0)],
            Err(e) => {
                out.push(ParamProblem::value(&["space", name], e));
                continue;
            }
        };
        let refused = values.iter().find_map(|v| {
            let mut trial = base.clone();
            trial.insert(name.clone(), v.clone());
            let p = train_problems(&trial).into_iter().find(|p| p.path.first() == Some(name))?;
            Some(format!("`space.{name}` = \"{spec}\" includes {v}, which `train` refuses: {}", p.message))
        });
        out.extend(refused.map(|m| ParamProblem::value(&["space", name], m)));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    fn problems(v: Json) -> Vec<String> {
        flywheel_core::Component::check_params(&super::super::Tune, v.as_object().unwrap())
            .into_iter()
            .map(|p| format!("{}: {}", p.path.join("."), p.message))
            .collect()
    }

    #[test]
    fn space_fixed_metric_and_folds_are_checked_before_the_run() {
        let ok = json!({ "target": "y", "model": "gbt", "space": { "learning_rate": "0.05..0.3 log", "max_depth": "3, 5" },
            "fixed": { "l2_regularization": "0.1" }, "metric": "roc_auc", "folds": 3 });
        assert_eq!(problems(ok), Vec::<String>::new());
        let bad = json!({ "target": "y", "model": "gbm",
            "space": { "learning_rat": "0.1, 0.2", "max_depth": "0..4", "alpha": "3..1" },
            "fixed": { "seeed": "1", "c": "-1" }, "metric": "acuracy", "folds": 1 });
        let p = problems(bad);
        assert_eq!(p.len(), 8, "{p:#?}");
        assert!(p[0].starts_with("model: `gbm` is not one of"), "{}", p[0]);
        assert_eq!(p[1], "fixed.c: `fixed.c` must be above 0, not -1");
        assert_eq!(p[2], "fixed.seeed: `fixed.seeed` is not a `train` parameter");
        assert!(p[3].starts_with("space.alpha: `space.alpha` = \"3..1\" is empty"), "{}", p[3]);
        assert_eq!(p[4], "space.learning_rat: `space.learning_rat` is not a parameter `train` can search");
        assert!(p[5].contains("includes 0, which `train` refuses: `max_depth` must be at least 1"), "{}", p[5]);
        assert_eq!(p[6], "metric: `acuracy` is not a metric `evaluate` reports");
        assert_eq!(p[7], "folds: `folds` must be between 2 and 50, not 1");
    }

    #[test]
    fn values_train_would_refuse_by_type_are_reported_where_they_are_written() {
        assert_eq!(
            problems(json!({ "target": "y", "space": { "max_depth": "3, 5.5" } })),
            [
                "space.max_depth: `space.max_depth` = \"3, 5.5\" includes 5.5, which `train` refuses: `max_depth`: expected an integer, found a float"
            ]
        );
        assert_eq!(
            problems(json!({ "target": "y", "space": { "alpha": "0.1" }, "fixed": { "seed": "abc" } })),
            ["fixed.seed: `fixed.seed`: expected an integer, found a string"]
        );
    }
}
