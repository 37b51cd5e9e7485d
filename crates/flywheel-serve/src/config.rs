//! What the user asked to serve ([`ServeConfig`]) and what the server
//! serves ([`Serve`]): the address checked, every reference resolved in the
//! registry and its model loaded (checked against its digest), so a model
//! that cannot be served stops the start with its name.

use crate::log::LogOptions;
use crate::table::{ModelTable, Served};
use crate::{Result, ServeError};
use flywheel_core::{ModelRef, Selector};
use flywheel_registry::Home;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// `NAME[@ALIAS]` or `NAME@VERSION`; none: every model with a `production` alias.
    pub models: Vec<String>,
    /// The prediction log (`--log-sample`); `None` is `--no-log`.
    pub log: Option<LogOptions>,
}

/// The server ready to run: the address and the loaded models.
pub struct Serve {
    pub addr: String,
    pub table: Arc<ModelTable>,
    /// The registry the models came from (kept open, shared, while serving).
    pub home: Option<Home>,
    /// The prediction log, written under `home` (none without a home).
    pub log: Option<LogOptions>,
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
        let refs = references(&home, &config.models)?;
        let mut served = Vec::with_capacity(refs.len());
        for r in &refs {
            served.push(load(&home, r).await?);
        }
        Ok(Serve {
            addr: config.addr.clone(),
            table: Arc::new(ModelTable::new(served)),
            home: Some(home),
            log: config.log.clone(),
        })
    }

    /// A server for models already loaded (tests, and embedding).
    pub fn from_table(addr: impl Into<String>, table: Arc<ModelTable>) -> Serve {
        Serve { addr: addr.into(), table, home: None, log: None }
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

/// The references to serve: those given (a bare name meaning its
/// `production` alias), or every model that has a `production` alias.
fn references(home: &Home, given: &[String]) -> Result<Vec<ModelRef>> {
    let refs: Vec<ModelRef> = if given.is_empty() {
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
        names.into_iter().map(|n| ModelRef { name: n, selector: Selector::Alias(DEFAULT_ALIAS.into()) }).collect()
    } else {
        given.iter().map(|s| parse_ref(s)).collect::<Result<_>>()?
    };
    for (i, r) in refs.iter().enumerate() {
        if let Some(other) = refs[..i].iter().find(|o| o.name == r.name) {
            return Err(ServeError::Load {
                reference: r.to_string(),
                message: format!("model `{}` is already served as `{other}`: serve one version per name", r.name),
            });
        }
    }
    Ok(refs)
}

fn parse_ref(s: &str) -> Result<ModelRef> {
    let mut r = ModelRef::parse(s).map_err(|message| ServeError::Load { reference: s.to_string(), message })?;
    if r.selector == Selector::Latest {
        r.selector = Selector::Alias(DEFAULT_ALIAS.into());
    }
    Ok(r)
}

/// Loads one model, or says which one could not be and why (naming the
/// registered models when the name is none of them).
async fn load(home: &Home, r: &ModelRef) -> Result<Served> {
    let err = |message: String| ServeError::Load { reference: r.to_string(), message };
    let (resolved, model) = match home.load_model(r).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let mut names: Vec<String> =
                home.metadata.model_versions().unwrap_or_default().into_iter().map(|v| v.model_name).collect();
            names.dedup();
            if names.is_empty() || names.contains(&r.name) {
                return Err(err(e.to_string()));
            }
            return Err(err(format!("no model named `{}` is registered; registered: {}", r.name, names.join(", "))));
        }
    };
    let v = &resolved.version;
    Ok(Served::new(v.model_name.clone(), v.version, r.to_string(), model))
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

    #[test]
    fn a_bare_name_means_its_production_alias() {
        assert_eq!(parse_ref("clf").unwrap().to_string(), "clf@production");
        assert_eq!(parse_ref("clf@3").unwrap().to_string(), "clf@3");
        assert_eq!(parse_ref("clf@canary").unwrap().to_string(), "clf@canary");
        assert!(parse_ref("clf@").is_err());
    }
}
