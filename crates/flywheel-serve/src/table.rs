//! The models being served: a name maps to its [`Route`] (the split and
//! the versions loaded for it), held as an `Arc` and replaced whole, so a
//! request keeps the version it started with while the follower or a live
//! split change puts another route in place.

use crate::route::{Arm, Route, Split};
use crate::served::Served;
use axum::http::HeaderValue;
use flywheel_core::{ModelRef, Selector};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The version chosen to answer a request.
#[derive(Debug, Clone)]
pub struct Picked {
    pub served: Arc<Served>,
    /// The reference of the arm that chose it (`bikes@canary`).
    pub arm: Arc<ModelRef>,
    /// `arm` as a header value.
    pub arm_header: Option<HeaderValue>,
    /// The shadow's reference and the version that gets a copy of the
    /// request, if any (never the one answering).
    pub shadow: Option<(Arc<ModelRef>, Arc<Served>)>,
}

/// Why no version can answer for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// The model is not served at all.
    NotServed,
    /// It is, but none of its arms has a version loaded.
    NothingLoaded,
}

/// Name → route.
#[derive(Debug, Default)]
pub struct ModelTable {
    routes: RwLock<BTreeMap<String, Arc<Route>>>,
    tickets: AtomicU64,
}

impl ModelTable {
    /// One route per model, all its traffic to the version given; the
    /// reference it was loaded by (`m@production`) is the one it follows.
    pub fn new(models: impl IntoIterator<Item = Served>) -> Self {
        ModelTable::from_routes(models.into_iter().map(|s| {
            let served = Arc::new(s);
            let selector = selector_of(&served);
            Route::empty(Split { name: served.name.clone(), arms: vec![(selector.clone(), 1)], shadow: None })
                .with_served(&selector, Some(served))
        }))
    }

    pub fn from_routes(routes: impl IntoIterator<Item = Route>) -> Self {
        let map = routes.into_iter().map(|r| (r.split.name.clone(), Arc::new(r))).collect();
        ModelTable { routes: RwLock::new(map), tickets: AtomicU64::new(0) }
    }

    /// The route of `name` now.
    pub fn route(&self, name: &str) -> Option<Arc<Route>> {
        self.read().get(name).cloned()
    }

    /// Every route, by name.
    pub fn routes(&self) -> Vec<Arc<Route>> {
        self.read().values().cloned().collect()
    }

    /// The version that answers a request for `name` carrying `key`.
    pub fn pick(&self, name: &str, key: Option<&[u8]>) -> Result<Picked, Unanswered> {
        let route = self.route(name).ok_or(Unanswered::NotServed)?;
        self.pick_from(&route, key)
    }

    /// The version of `route` that answers a request carrying `key`.
    pub fn pick_from(&self, route: &Route, key: Option<&[u8]>) -> Result<Picked, Unanswered> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let arm: &Arm = route.pick(key, ticket).ok_or(Unanswered::NothingLoaded)?;
        let served = arm.served.clone().ok_or(Unanswered::NothingLoaded)?;
        let shadow = route.shadow.as_ref().and_then(|a| {
            let s = a.served.as_ref().filter(|s| s.version != served.version)?;
            Some((a.reference.clone(), s.clone()))
        });
        Ok(Picked { served, arm: arm.reference.clone(), arm_header: arm.header.clone(), shadow })
    }

    /// A version answering for `name`, for what does not depend on the
    /// split (metadata, readiness): the first loaded arm.
    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.route(name)?.arms.iter().find_map(|a| a.served.clone())
    }

    /// The route of the only model served, if there is exactly one.
    pub fn sole(&self) -> Option<Arc<Route>> {
        let routes = self.read();
        if routes.len() == 1 { routes.values().next().cloned() } else { None }
    }

    /// Every loaded version of every model, by name.
    pub fn all(&self) -> Vec<Arc<Served>> {
        self.read().values().flat_map(|r| r.versions()).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Whether every model has a version that can answer.
    pub fn ready(&self) -> bool {
        let routes = self.read();
        !routes.is_empty() && routes.values().all(|r| r.pick(None, 0).is_some())
    }

    /// Replaces the split of `split.name` (or adds the model), keeping the
    /// versions loaded for references it still has; returns the old route.
    pub fn set_split(&self, split: Split) -> Option<Arc<Route>> {
        let mut routes = self.write();
        let next = match routes.get(&split.name) {
            Some(old) => old.with_split(split),
            None => Route::empty(split),
        };
        routes.insert(next.split.name.clone(), Arc::new(next))
    }

    /// Puts `route` in place of its model's, whole.
    pub fn install(&self, route: Route) -> Option<Arc<Route>> {
        self.write().insert(route.split.name.clone(), Arc::new(route))
    }

    /// Puts `served` (or nothing) in place for the reference `r`; returns
    /// the version it replaced. Requests holding the old one finish on it.
    pub fn set_served(&self, r: &ModelRef, served: Option<Arc<Served>>) -> Option<Arc<Served>> {
        let mut routes = self.write();
        let route = routes.get(&r.name)?;
        let old = route.loaded(&r.selector);
        let next = route.with_served(&r.selector, served);
        routes.insert(r.name.clone(), Arc::new(next));
        old
    }

    /// Puts `served` in place for the reference it was loaded by (adding a
    /// route for it when its model has none); returns the one it replaced.
    pub fn swap(&self, served: Served) -> Option<Arc<Served>> {
        let r = ModelRef { name: served.name.clone(), selector: selector_of(&served) };
        if self.route(&r.name).is_none() {
            self.set_split(Split::single(&r));
        }
        self.set_served(&r, Some(Arc::new(served)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Route>>> {
        // Writers only insert whole routes, so a panic while holding the
        // lock cannot leave the map half-written: a poisoned lock is good.
        self.routes.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Route>>> {
        self.routes.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The selector a version was loaded by (`m@production` → `production`),
/// or its own version number when that cannot be read.
fn selector_of(served: &Served) -> Selector {
    match ModelRef::parse(&served.reference) {
        Ok(r) if r.name == served.name && r.selector != Selector::Latest => r.selector,
        _ => Selector::Version(served.version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::served::test_served as served;

    fn split(arms: &[(&str, u32)], shadow: Option<&str>) -> Split {
        let sel = |a: &str| Selector::Alias(a.into());
        Split { name: "m".into(), arms: arms.iter().map(|(a, w)| (sel(a), *w)).collect(), shadow: shadow.map(sel) }
    }

    fn r(alias: &str) -> ModelRef {
        ModelRef { name: "m".into(), selector: Selector::Alias(alias.into()) }
    }

    #[test]
    fn a_swap_replaces_the_answering_version_and_keeps_the_old_one_alive_for_its_holders() {
        let table = ModelTable::new([served(1, "m@production")]);
        let held = table.get("m").unwrap();
        let old = table.swap(served(2, "m@production")).unwrap();
        assert_eq!(old.version, 1);
        assert_eq!(held.version, 1, "a request in flight keeps its version");
        assert_eq!(table.get("m").unwrap().version, 2);
        assert_eq!(table.pick("m", None).unwrap().served.label(), "m@2");
        assert_eq!(table.sole().map(|r| r.split.name.clone()).as_deref(), Some("m"));
        assert!(table.get("other").is_none());
        assert_eq!(table.pick("other", None).unwrap_err(), Unanswered::NotServed);
    }

    #[test]
    fn an_arm_with_nothing_loaded_takes_no_traffic_until_its_version_is() {
        let table = ModelTable::default();
        table.set_split(split(&[("production", 90), ("canary", 10)], None));
        assert_eq!(table.pick("m", None).unwrap_err(), Unanswered::NothingLoaded);
        assert!(!table.ready());
        table.set_served(&r("production"), Some(Arc::new(served(1, "m@production"))));
        assert!(table.ready());
        assert!((0..200).all(|_| table.pick("m", None).unwrap().served.version == 1));
        table.set_served(&r("canary"), Some(Arc::new(served(2, "m@canary"))));
        let canary = (0..2000).filter(|_| table.pick("m", None).unwrap().served.version == 2).count();
        assert!((120..=280).contains(&canary), "about 10% of 2000 to the canary, got {canary}");
        let loaded: Vec<i64> = table.route("m").unwrap().versions().iter().map(|s| s.version).collect();
        assert_eq!(loaded, [1, 2]);
    }

    #[test]
    fn a_new_split_keeps_what_is_loaded_for_the_references_it_still_has() {
        let table = ModelTable::default();
        table.set_split(split(&[("production", 1)], Some("challenger")));
        table.set_served(&r("production"), Some(Arc::new(served(1, "m@production"))));
        table.set_served(&r("challenger"), Some(Arc::new(served(5, "m@challenger"))));
        let picked = table.pick("m", None).unwrap();
        assert_eq!((picked.served.version, picked.shadow.as_ref().map(|(_, s)| s.version)), (1, Some(5)));
        table.set_split(split(&[("production", 50), ("challenger", 50)], None));
        let route = table.route("m").unwrap();
        assert!(route.shadow.is_none());
        assert_eq!(route.versions().iter().map(|s| s.version).collect::<Vec<_>>(), vec![1, 5]);
        assert!(table.pick("m", None).unwrap().shadow.is_none());
    }

    #[test]
    fn a_shadow_on_the_version_that_answers_gets_no_copy() {
        let table = ModelTable::default();
        table.set_split(split(&[("production", 1)], Some("challenger")));
        table.set_served(&r("production"), Some(Arc::new(served(1, "m@production"))));
        table.set_served(&r("challenger"), Some(Arc::new(served(1, "m@challenger"))));
        assert!(table.pick("m", None).unwrap().shadow.is_none());
    }
}
