//! How one model's traffic is shared out: a [`Split`] between references
//! (`production` 90, `canary` 10: aliases or pinned versions, any names,
//! any weights) and an optional shadow that gets a copy of every request
//! and whose answers are never returned. A [`Route`] is a split with the
//! versions currently loaded for it; it is immutable, so a request picks
//! its arm from one consistent route while the follower builds the next.

use crate::served::Served;
use axum::http::HeaderValue;
use flywheel_core::{ModelRef, Selector};
use std::fmt;
use std::sync::Arc;

/// The most arms a split may have: each is a loaded version in memory.
pub const MAX_ARMS: usize = 16;

/// What a model's traffic should do, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub name: String,
    /// Each reference with its share; weights are relative, not percents.
    pub arms: Vec<(Selector, u32)>,
    pub shadow: Option<Selector>,
}

impl Split {
    /// All traffic to one reference.
    pub fn single(r: &ModelRef) -> Split {
        Split { name: r.name.clone(), arms: vec![(r.selector.clone(), 1)], shadow: None }
    }

    /// Why this split cannot route traffic, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.arms.len() > MAX_ARMS {
            return Some(format!("model `{}`: {} arms; a split has {MAX_ARMS} at most", self.name, self.arms.len()));
        }
        if !self.arms.iter().any(|(_, w)| *w > 0) {
            return Some(format!("model `{}`: the split has no arm with a weight above 0", self.name));
        }
        let all: Vec<&Selector> = self.arms.iter().map(|(s, _)| s).chain(&self.shadow).collect();
        for (i, s) in all.iter().enumerate() {
            if **s == Selector::Latest {
                return Some(format!(
                    "model `{}`: an arm needs an alias or a version, as {}@production",
                    self.name, self.name
                ));
            }
            if all[..i].contains(s) {
                return Some(format!("model `{}`: `{}` appears twice in the split", self.name, self.reference(s)));
            }
        }
        None
    }

    /// Every reference this split serves, arms first, then the shadow.
    pub fn references(&self) -> Vec<ModelRef> {
        self.arms.iter().map(|(s, _)| s).chain(&self.shadow).map(|s| self.reference(s)).collect()
    }

    fn reference(&self, s: &Selector) -> ModelRef {
        ModelRef { name: self.name.clone(), selector: s.clone() }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arms: Vec<String> = self.arms.iter().map(|(s, w)| format!("{}:{w}", self.reference(s))).collect();
        f.write_str(&arms.join(" "))?;
        match &self.shadow {
            Some(s) => write!(f, " {}:shadow", self.reference(s)),
            None => Ok(()),
        }
    }
}

/// One reference of a route and the version loaded for it, if any (an
/// alias that points nowhere yet, say `canary` before the first canary).
#[derive(Debug, Clone)]
pub struct Arm {
    /// Shared: every request it answers holds it.
    pub reference: Arc<ModelRef>,
    /// The reference as the `x-flywheel-arm` header says it, made once.
    pub header: Option<HeaderValue>,
    pub weight: u32,
    pub served: Option<Arc<Served>>,
}

/// A split with its loaded versions.
#[derive(Debug, Clone)]
pub struct Route {
    pub split: Split,
    pub arms: Vec<Arm>,
    pub shadow: Option<Arm>,
}

impl Route {
    /// A route for `split` with nothing loaded yet.
    pub fn empty(split: Split) -> Route {
        let arm = |s: &Selector, weight| {
            let reference = ModelRef { name: split.name.clone(), selector: s.clone() };
            let header = HeaderValue::try_from(reference.to_string()).ok();
            Arm { reference: Arc::new(reference), header, weight, served: None }
        };
        let arms = split.arms.iter().map(|(s, w)| arm(s, *w)).collect();
        let shadow = split.shadow.as_ref().map(|s| arm(s, 0));
        Route { split, arms, shadow }
    }

    /// The same route for another split, keeping what is loaded for every
    /// reference both share.
    pub fn with_split(&self, split: Split) -> Route {
        let mut next = Route::empty(split);
        for arm in next.arms.iter_mut().chain(next.shadow.as_mut()) {
            arm.served = self.loaded(&arm.reference.selector);
        }
        next
    }

    /// The same route with `served` (or nothing) loaded for `selector`.
    pub fn with_served(&self, selector: &Selector, served: Option<Arc<Served>>) -> Route {
        let mut next = self.clone();
        for arm in next.arms.iter_mut().chain(next.shadow.as_mut()) {
            if arm.reference.selector == *selector {
                arm.served = served.clone();
            }
        }
        next
    }

    /// The version loaded for `selector`, if any.
    pub fn loaded(&self, selector: &Selector) -> Option<Arc<Served>> {
        self.every_arm().find(|a| a.reference.selector == *selector).and_then(|a| a.served.clone())
    }

    /// The arm that answers a request: by the hash of its key when it has
    /// one (the same key, the same arm, while the split stays), otherwise
    /// by `ticket`, a number that differs per request. Only loaded arms
    /// with a weight take traffic; `None` when there is none.
    pub fn pick(&self, key: Option<&[u8]>, ticket: u64) -> Option<&Arm> {
        let live = || self.arms.iter().filter(|a| a.weight > 0 && a.served.is_some());
        let total: u64 = live().map(|a| u64::from(a.weight)).sum();
        if total == 0 {
            return None;
        }
        let hash = match key {
            Some(k) => xxhash_rust::xxh3::xxh3_64(k),
            None => xxhash_rust::xxh3::xxh3_64(&ticket.to_le_bytes()),
        };
        let mut point = hash % total;
        for arm in live() {
            match point.checked_sub(u64::from(arm.weight)) {
                Some(rest) => point = rest,
                None => return Some(arm),
            }
        }
        None
    }

    /// The shadow's version, when one is loaded.
    pub fn shadow(&self) -> Option<&Arc<Served>> {
        self.shadow.as_ref().and_then(|a| a.served.as_ref())
    }

    /// Every arm, the shadow last.
    pub fn every_arm(&self) -> impl Iterator<Item = &Arm> {
        self.arms.iter().chain(self.shadow.as_ref())
    }

    /// Why `served` may not answer for `arm` beside the versions the other
    /// arms have loaded: they must read the same inputs, or a request right
    /// for one arm would be refused by another.
    pub fn input_conflict(&self, arm: &ModelRef, served: &Served) -> Option<String> {
        let mine = served.inputs_text();
        self.every_arm().filter(|a| *a.reference != *arm).find_map(|a| {
            let other = a.served.as_ref()?;
            let theirs = other.inputs_text();
            (theirs != mine).then(|| {
                format!(
                    "version {} reads {mine}, but {} (version {}) reads {theirs}: the versions of a split must read \
                     the same inputs; move the other references first, or change the split",
                    served.version, a.reference, other.version
                )
            })
        })
    }

    /// Every loaded version once, arms first.
    pub fn versions(&self) -> Vec<Arc<Served>> {
        let mut out: Vec<Arc<Served>> = Vec::new();
        for s in self.every_arm().filter_map(|a| a.served.as_ref()) {
            if !out.iter().any(|o| o.version == s.version) {
                out.push(s.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
