//! Load targets: `http://` URLs on loopback only, so a benchmark can never be aimed elsewhere.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "{0:?} is not an http:// URL with an address and port; write e.g. http://127.0.0.1:8080/"
    )]
    Malformed(String),
    #[error("{0} is not a loopback address; load is only ever sent to 127.0.0.0/8 or ::1")]
    NotLoopback(IpAddr),
}

/// Where requests go: a loopback socket address, a Host header and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let malformed = || TargetError::Malformed(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(malformed)?;
        let (authority, path) = match rest.find('/') {
            Some(index) => rest.split_at(index),
            None => (rest, "/"),
        };
        let addr: SocketAddr = authority.parse().map_err(|_| malformed())?;
        if !addr.ip().is_loopback() {
            return Err(TargetError::NotLoopback(addr.ip()));
        }
        Ok(Self {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        let target = Target::parse("http://127.0.0.1:8080/x?y=1").unwrap();
        assert_eq!(target.path, "/x?y=1");
        assert_eq!(target.host, "127.0.0.1:8080");
        assert!(Target::parse("http://[::1]:80").is_ok());
        assert_eq!(
            Target::parse("http://10.0.0.1:80/"),
            Err(TargetError::NotLoopback("10.0.0.1".parse().unwrap()))
        );
        assert!(matches!(
            Target::parse("https://127.0.0.1:1/"),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            Target::parse("http://localhost:1/"),
            Err(TargetError::Malformed(_))
        ));
    }
}
