//! The models being served: a name maps to the version that answers for
//! it, held as an `Arc` so a request keeps the version it started with
//! while [`ModelTable::swap`] puts another in place.

use flywheel_ml::{ColumnKind, Model, Task};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One loaded model version.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub version: i64,
    /// What the user asked for (`clf@production`), to say why this version.
    pub reference: String,
    pub model: Model,
}

impl Served {
    pub fn new(name: String, version: i64, reference: String, model: Model) -> Self {
        Served { name, version, reference, model }
    }

    /// `name@version`, as the `x-flywheel-model-version` header says it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The kind of the input column `name`, if the model reads it.
    pub fn input_kind(&self, name: &str) -> Option<ColumnKind> {
        self.model.signature.inputs.iter().find(|i| i.name == name).map(|i| i.kind)
    }

    pub fn input_names(&self) -> Vec<&str> {
        self.model.signature.inputs.iter().map(|i| i.name.as_str()).collect()
    }

    pub fn is_classifier(&self) -> bool {
        self.model.task == Task::Classification
    }
}

/// Name → the version answering for it.
#[derive(Debug, Default)]
pub struct ModelTable {
    models: RwLock<BTreeMap<String, Arc<Served>>>,
}

impl ModelTable {
    pub fn new(models: impl IntoIterator<Item = Served>) -> Self {
        let map = models.into_iter().map(|s| (s.name.clone(), Arc::new(s))).collect();
        ModelTable { models: RwLock::new(map) }
    }

    /// The version answering for `name` now.
    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.read().get(name).cloned()
    }

    /// The only model served, if there is exactly one.
    pub fn sole(&self) -> Option<Arc<Served>> {
        let models = self.read();
        if models.len() == 1 { models.values().next().cloned() } else { None }
    }

    /// Every model served, by name.
    pub fn all(&self) -> Vec<Arc<Served>> {
        self.read().values().cloned().collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Puts `served` in place of the version answering for its name (or
    /// adds it); returns the one it replaced. Requests holding the old
    /// version finish on it.
    pub fn swap(&self, served: Served) -> Option<Arc<Served>> {
        let mut models = self.models.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        models.insert(served.name.clone(), Arc::new(served))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Served>>> {
        // A panic while holding the lock cannot leave the map half-written
        // (insert is the only write), so a poisoned lock is still good.
        self.models.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        use flywheel_ml::{Column, Estimator, Frame, transform};
        let mut f = Frame::new();
        f.push("x", Column::Num(vec![1.0, 2.0, 4.0])).unwrap_or_else(|e| panic!("{e}"));
        let t = transform::fit(&f, &["x".into()], &Default::default(), transform::TREE_DEFAULTS)
            .unwrap_or_else(|e| panic!("{e}"));
        let est = Estimator::Linear { algorithm: "ols".into(), weights: vec![2.0], intercept: 1.0 };
        Model::new(Task::Regression, "y".into(), vec![], t, est, serde_json::json!({}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_swap_replaces_the_answering_version_and_keeps_the_old_one_alive_for_its_holders() {
        let table = ModelTable::new([Served::new("m".into(), 1, "m@production".into(), model())]);
        let held = table.get("m").unwrap();
        let old = table.swap(Served::new("m".into(), 2, "m@production".into(), model())).unwrap();
        assert_eq!(old.version, 1);
        assert_eq!(held.version, 1, "a request in flight keeps its version");
        assert_eq!(table.get("m").unwrap().version, 2);
        assert_eq!(table.sole().unwrap().label(), "m@2");
        assert!(table.get("other").is_none());
    }
}
