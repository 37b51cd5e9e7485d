//! What the user asked to serve ([`ServeConfig`]) and what the server
//! serves ([`Serve`]): the address checked, every reference resolved in the
//! registry and its model loaded (checked against its digest), so a model
//! that cannot be served stops the start with its name.

use crate::follow::{DEFAULT_POLL, Followed, Follower};
use crate::log::LogOptions;
use crate::metrics::Metrics;
use crate::quiet::Moment;
use crate::route::{Route, Split};
use crate::state::Limits;
use crate::table::ModelTable;
use crate::{Result, ServeError};
use flywheel_core::{ModelRef, Selector};
use flywheel_registry::Home;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the server listens unless told: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The alias a model named without one is served at, and the one every
/// model with it is served by when no model is named.
pub const DEFAULT_ALIAS: &str = "production";

/// The server as asked for.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub home: PathBuf,
    /// `HOST:PORT`; port 0 picks a free one.
    pub addr: String,
    /// `NAME[@ALIAS|@VERSION][:WEIGHT|:shadow]`; none: every model with a
    /// `production` alias. A model named more than once is split between
    /// its references by weight (`m@production:90 m@canary:10`).
    pub models: Vec<String>,
    /// How often the registry is looked at for aliases that moved.
    pub poll: Duration,
    pub limits: Limits,
    /// The bearer token endpoints that change state ask for (`FLYWHEEL_TOKEN`).
    pub token: Option<String>,
    /// The prediction log (`--log-sample`); `None` is `--no-log`.
    pub log: Option<LogOptions>,
}

/// The server ready to run: the address, the loaded models, and the
/// follower that keeps them in step with the registry.
pub struct Serve {
    pub addr: String,
    pub table: Arc<ModelTable>,
    /// The registry the models came from (kept open, shared, while serving).
    pub home: Option<Home>,
    pub follower: Option<Follower>,
    pub poll: Duration,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub token: Option<String>,
    /// The prediction log, written under `home` (none without a home).
    pub log: Option<LogOptions>,
    /// Run once a second while requests come and once when they stop (see
    /// `quiet.rs`): the CLI gives freed memory back.
    pub memory_hook: Option<fn(Moment)>,
}

impl Serve {
    /// Checks the address, opens the registry, resolves and loads every model.
    pub async fn load(config: &ServeConfig) -> Result<Serve> {
        check_addr(&config.addr)?;
        if !config.home.join("metadata.db").is_file() {
            return Err(ServeError::NoModels(format!(
                "no registry at {}: nothing to serve (set --home or FLYWHEEL_HOME)",
                config.home.display()
            )));
        }
        let home = Home::open(&config.home)?;
        let splits = splits(&home, &config.models)?;
        if let Some(log) = &config.log {
            log.sampling.check_models(&splits.iter().map(|s| s.name.clone()).collect::<Vec<_>>())?;
        }
        let table = Arc::new(ModelTable::from_routes(splits.into_iter().map(Route::empty)));
        let metrics = Arc::new(Metrics::default());
        let mut follower = Follower::new(home.clone(), table.clone(), metrics.clone());
        let first = follower.tick().await;
        startup_problem(&home, &table, &first)?;
        Ok(Serve {
            addr: config.addr.clone(),
            table,
            home: Some(home),
            follower: Some(follower),
            poll: config.poll,
            metrics,
            limits: config.limits.clone(),
            token: config.token.clone(),
            log: config.log.clone(),
            memory_hook: None,
        })
    }

    /// A server for models already loaded (tests, and embedding).
    pub fn from_table(addr: impl Into<String>, table: Arc<ModelTable>) -> Serve {
        Serve {
            addr: addr.into(),
            table,
            home: None,
            follower: None,
            poll: DEFAULT_POLL,
            metrics: Arc::default(),
            limits: Limits::default(),
            token: None,
            log: None,
            memory_hook: None,
        }
    }
}

/// `HOST:PORT` with a port number; the host is looked up when binding.
fn check_addr(addr: &str) -> Result<()> {
    if addr.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ServeError::Address {
            addr: addr.to_string(),
            message: "not an address: write HOST:PORT, as 127.0.0.1:8080 or 0.0.0.0:8080".into(),
        }),
    }
}

/// One model reference as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Given {
    reference: ModelRef,
    /// `None`: no weight given; `Some(None)`: the shadow.
    weight: Option<Option<u32>>,
}

/// The splits to serve: those given, or every model that has a
/// `production` alias, all its traffic there.
fn splits(home: &Home, given: &[String]) -> Result<Vec<Split>> {
    if !given.is_empty() {
        let parsed = given.iter().map(|s| parse_given(s)).collect::<Result<Vec<_>>>()?;
        return group(parsed);
    }
    let mut names: Vec<String> = home
        .metadata
        .model_versions()
        .map_err(flywheel_registry::RegistryError::from)?
        .into_iter()
        .filter(|v| v.aliases.iter().any(|a| a == DEFAULT_ALIAS))
        .map(|v| v.model_name)
        .collect();
    names.dedup();
    if names.is_empty() {
        return Err(ServeError::NoModels(format!(
            "no model has a `{DEFAULT_ALIAS}` alias: name the models to serve, as NAME@ALIAS or NAME@VERSION"
        )));
    }
    Ok(names.into_iter().map(|n| Split::single(&ModelRef { name: n, selector: production() })).collect())
}

fn production() -> Selector {
    Selector::Alias(DEFAULT_ALIAS.into())
}

/// `NAME[@ALIAS|@VERSION][:WEIGHT|:shadow]`, a bare name meaning `@production`.
fn parse_given(s: &str) -> Result<Given> {
    let err = |message: String| ServeError::Load { reference: s.to_string(), message };
    let (reference, weight) = match s.rsplit_once(':') {
        None => (s, None),
        Some((r, "shadow")) => (r, Some(None)),
        Some((r, w)) => match w.parse::<u32>() {
            Ok(w) => (r, Some(Some(w))),
            Err(_) => {
                return Err(err(format!(
                    "`{w}` is not a weight: write NAME@ALIAS:WEIGHT (a whole number) or NAME@ALIAS:shadow"
                )));
            }
        },
    };
    let mut r = ModelRef::parse(reference).map_err(err)?;
    if r.selector == Selector::Latest {
        r.selector = production();
    }
    Ok(Given { reference: r, weight })
}

/// The references given, grouped by model into splits: a model named
/// once takes all its traffic there; named more than once, each of its
/// references needs a weight (or `:shadow`).
fn group(given: Vec<Given>) -> Result<Vec<Split>> {
    let mut splits: Vec<Split> = Vec::new();
    for g in &given {
        let named = given.iter().filter(|o| o.reference.name == g.reference.name).count();
        let err = |message: String| ServeError::Load { reference: g.reference.to_string(), message };
        let i = match splits.iter().position(|s| s.name == g.reference.name) {
            Some(i) => i,
            None => {
                splits.push(Split { name: g.reference.name.clone(), arms: vec![], shadow: None });
                splits.len() - 1
            }
        };
        let split = &mut splits[i];
        match g.weight {
            None if named > 1 => {
                return Err(err(format!(
                    "model `{}` is named {named} times: give each of its references a weight, as {}:90, or :shadow",
                    g.reference.name, g.reference
                )));
            }
            None => split.arms.push((g.reference.selector.clone(), 1)),
            Some(Some(w)) => split.arms.push((g.reference.selector.clone(), w)),
            Some(None) if split.shadow.is_some() => return Err(err("a model has one shadow at most".into())),
            Some(None) => split.shadow = Some(g.reference.selector.clone()),
        }
    }
    for split in &splits {
        if let Some(problem) = split.problem() {
            return Err(ServeError::Load { reference: split.to_string(), message: problem });
        }
    }
    Ok(splits)
}

/// At start, every version a reference points at must load, and every
/// model must have a version to answer with.
fn startup_problem(home: &Home, table: &ModelTable, first: &[Followed]) -> Result<()> {
    if let Some(Followed::Refused { reference, version, why }) =
        first.iter().find(|f| matches!(f, Followed::Refused { .. }))
    {
        return Err(ServeError::Load {
            reference: reference.to_string(),
            message: format!("version {version}: {why}"),
        });
    }
    for route in table.routes() {
        if route.pick(None, 0).is_some() {
            continue;
        }
        let Some(arm) = route.arms.iter().find(|a| a.weight > 0) else { continue };
        let why = match home.resolve(&arm.reference) {
            Err(e) => e,
            Ok(_) => continue,
        };
        return Err(not_found(home, &arm.reference, why));
    }
    Ok(())
}

/// Why `r` cannot be served, naming the registered models when its name is none of them.
fn not_found(home: &Home, r: &ModelRef, why: flywheel_registry::RegistryError) -> ServeError {
    let err = |message: String| ServeError::Load { reference: r.to_string(), message };
    let mut names: Vec<String> =
        home.metadata.model_versions().unwrap_or_default().into_iter().map(|v| v.model_name).collect();
    names.dedup();
    if names.is_empty() || names.contains(&r.name) {
        return err(why.to_string());
    }
    err(format!("no model named `{}` is registered; registered: {}", r.name, names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_needs_a_port_and_a_host() {
        for good in ["127.0.0.1:8080", "[::1]:0", "localhost:9000", "0.0.0.0:80"] {
            assert!(check_addr(good).is_ok(), "{good}");
        }
        for bad in ["8080", ":8080", "localhost", "127.0.0.1:99999", "host:port"] {
            let e = check_addr(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("HOST:PORT"), "{e}");
        }
    }

    fn given(s: &str) -> Given {
        parse_given(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_bare_name_means_its_production_alias() {
        assert_eq!(given("clf").reference.to_string(), "clf@production");
        assert_eq!(given("clf@3").reference.to_string(), "clf@3");
        assert_eq!(
            given("clf@canary:10"),
            Given { reference: ModelRef::parse("clf@canary").unwrap(), weight: Some(Some(10)) }
        );
        assert_eq!(given("clf@challenger:shadow").weight, Some(None));
        assert!(parse_given("clf@").is_err());
        let e = parse_given("clf@canary:ten").unwrap_err().to_string();
        assert!(e.contains("`ten` is not a weight"), "{e}");
    }

    fn grouped(args: &[&str]) -> std::result::Result<Vec<String>, String> {
        let parsed = args.iter().map(|a| given(a)).collect();
        group(parsed).map(|s| s.iter().map(|s| s.to_string()).collect()).map_err(|e| e.to_string())
    }

    #[test]
    fn references_to_one_model_make_its_split() {
        assert_eq!(grouped(&["a", "b@3"]).unwrap(), ["a@production:1", "b@3:1"]);
        assert_eq!(
            grouped(&["a@production:90", "b", "a@canary:10", "a@next:shadow"]).unwrap(),
            ["a@production:90 a@canary:10 a@next:shadow", "b@production:1"]
        );
        assert!(grouped(&["a", "a@canary:10"]).unwrap_err().contains("give each of its references a weight"));
        assert!(grouped(&["a@production:0", "a@canary:0"]).unwrap_err().contains("weight above 0"));
        assert!(grouped(&["a@p:1", "a@p:2"]).unwrap_err().contains("twice"));
        assert!(grouped(&["a@p:1", "a@x:shadow", "a@y:shadow"]).unwrap_err().contains("one shadow"));
    }
}
