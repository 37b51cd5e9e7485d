//! The server a client talks to, as the user gave it: `http://HOST:PORT`,
//! with an optional path prefix (a server behind a proxy at `/serving`).

use crate::ClientError;
use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct Target {
    /// As given, for messages.
    pub url: String,
    host: String,
    port: u16,
    /// Empty, or `/prefix` without a trailing slash.
    prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |why: &str| ClientError::Url { given: url.to_string(), why: why.to_string() };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(bad("https is not supported; give the server's own http:// address (it binds 127.0.0.1)"));
            }
            Some(_) => return Err(bad("only http:// addresses are supported")),
            None => url,
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad("the port must be a number from 1 to 65535"))?)
            }
            _ => (authority, 80),
        };
        if host.is_empty() || port == 0 {
            return Err(bad("write it as http://HOST:PORT, for example http://127.0.0.1:8080"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let path = path.trim_end_matches('/');
        let prefix = if path.is_empty() { String::new() } else { format!("/{path}") };
        Ok(Target { url: url.to_string(), host, port, prefix })
    }

    /// The first address the host resolves to.
    pub async fn resolve(&self) -> Result<SocketAddr, ClientError> {
        let mut found = tokio::net::lookup_host((self.host.as_str(), self.port)).await.map_err(|e| {
            ClientError::Url { given: self.url.clone(), why: format!("cannot resolve `{}`: {e}", self.host) }
        })?;
        found.next().ok_or_else(|| ClientError::Url {
            given: self.url.clone(),
            why: format!("`{}` resolves to no address", self.host),
        })
    }

    /// `path` (starting with `/`) under the target's prefix.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_read_with_its_port_and_prefix() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path("/ping")), ("127.0.0.1", 8080, "/ping".to_string()));
        let t = Target::parse("localhost:9000/serving/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path("/ping")), ("localhost", 9000, "/serving/ping".to_string()));
        let t = Target::parse("http://[::1]:7000").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 7000));
        assert_eq!(Target::parse("http://example.org").unwrap().port, 80);
    }

    #[test]
    fn an_address_that_cannot_be_used_says_why() {
        for (url, why) in [
            ("https://x:1", "https"),
            ("ftp://x:1", "only http"),
            ("http://x:port", "port must be a number"),
            ("http://:8080", "HOST:PORT"),
            ("http://x:0", "HOST:PORT"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains(url) && e.contains(why), "{url}: {e}");
        }
    }
}
