//! The connection flags every serving command shares (`wisp run`, `wisp serve`, `wisp node`,
//! `wisp up`): how long, how large and how many connections may be, how long a shutdown may
//! take, and whose forwarding headers to believe. They apply to the data port; the metrics
//! port takes the same limits (it counts its connections on its own).

use std::time::Duration;

use anyhow::Context;
use wisp_gateway::routing::forwarded::{self, IpNet, TrustedProxies};
use wisp_gateway::server::{MIN_HEADER_BYTES, ServerLimits};

use crate::cli_values;

#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// On SIGTERM/SIGINT, how long requests in flight get to finish once the server stops
    /// accepting; connections still busy then are cut. Idle connections close at once.
    #[arg(long, value_parser = cli_values::duration_or_zero, default_value = "30s")]
    pub grace_period: Duration,
    /// Most client connections open at once on each port; more wait in the listen backlog
    /// until one closes. Keep it below the open-files limit (`ulimit -n`).
    #[arg(long, default_value_t = 10_000, value_parser = connections)]
    pub max_connections: usize,
    /// A request's head must arrive within this time of the connection opening (or of its
    /// first byte, on a kept-alive connection), else the connection is closed.
    #[arg(long, value_parser = cli_values::duration, default_value = "10s")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (keep it above the idle
    /// timeout of a load balancer in front, typically 60s).
    #[arg(long, value_parser = cli_values::duration, default_value = "75s")]
    pub idle_timeout: Duration,
    /// Largest request head, request line and headers together (431 beyond), e.g. 64Ki; at
    /// least 8Ki.
    #[arg(long, value_parser = header_bytes, default_value = "64Ki")]
    pub max_header_bytes: usize,
    /// Most header fields in one request (431 beyond).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_headers: u32,
    /// Most requests at once on one HTTP/2 connection.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,
    /// A proxy (IP or CIDR range, e.g. 10.0.0.0/8) whose `Forwarded` and `X-Forwarded-*`
    /// headers are kept (repeatable). From any other peer they are replaced by what the server
    /// saw. Default: trust nobody.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = trusted_proxy)]
    pub trusted_proxies: Vec<IpNet>,
}

impl ServerArgs {
    /// The limits the flags describe, checked.
    pub fn limits(&self) -> anyhow::Result<ServerLimits> {
        let limits = ServerLimits {
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_header_bytes: self.max_header_bytes,
            max_headers: usize::try_from(self.max_headers).unwrap_or(usize::MAX),
            max_concurrent_streams: self.max_concurrent_streams,
            grace_period: self.grace_period,
        };
        limits
            .validate()
            .context("the connection flags do not fit")?;
        Ok(limits)
    }

    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.iter().copied())
    }
}

fn connections(input: &str) -> Result<usize, String> {
    match input.trim().parse::<u32>() {
        Ok(0) => Err("allow at least one connection, e.g. 10000".into()),
        Ok(count) => usize::try_from(count).map_err(|error| error.to_string()),
        Err(_) => Err(format!(
            "invalid connection count {input:?}: write a whole number, e.g. 10000"
        )),
    }
}

fn header_bytes(input: &str) -> Result<usize, String> {
    let bytes = cli_values::memory(input)?;
    let min = MIN_HEADER_BYTES as u64;
    if bytes < min {
        return Err(format!(
            "{input:?} is below the {min} bytes (8Ki) HTTP/1 needs; write e.g. 64Ki"
        ));
    }
    u32::try_from(bytes)
        .ok()
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("{input:?} is more than 4Gi; write e.g. 64Ki"))
}

fn trusted_proxy(input: &str) -> Result<IpNet, String> {
    forwarded::parse_proxy(input).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(args: &[&str]) -> Result<ServerArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("wisp").chain(args.iter().copied()))
            .map(|cli| cli.server)
    }

    #[test]
    fn the_defaults_are_the_library_defaults() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.limits().unwrap(), ServerLimits::default());
        assert!(args.trusted_proxies().is_empty());
    }

    #[test]
    fn every_flag_reaches_the_limits() {
        let args = parse(&[
            "--grace-period",
            "2s",
            "--max-connections",
            "8",
            "--header-read-timeout",
            "1500ms",
            "--idle-timeout",
            "3s",
            "--max-header-bytes",
            "16Ki",
            "--max-headers",
            "20",
            "--max-concurrent-streams",
            "7",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "127.0.0.1",
        ])
        .unwrap();
        let limits = args.limits().unwrap();
        assert_eq!(limits.grace_period, Duration::from_secs(2));
        assert_eq!(limits.max_connections, 8);
        assert_eq!(limits.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(limits.idle_timeout, Duration::from_secs(3));
        assert_eq!(limits.max_header_bytes, 16 * 1024);
        assert_eq!(limits.max_headers, 20);
        assert_eq!(limits.max_concurrent_streams, 7);
        let trusted = args.trusted_proxies();
        assert!(trusted.contains("10.1.2.3".parse().unwrap()));
        assert!(trusted.contains("127.0.0.1".parse().unwrap()));
        assert!(!trusted.contains("127.0.0.2".parse().unwrap()));
        assert_eq!(
            parse(&["--grace-period", "0"]).unwrap().grace_period,
            Duration::ZERO
        );
    }

    #[test]
    fn unworkable_values_are_refused_with_what_to_write() {
        for (args, says) in [
            (&["--max-connections", "0"][..], "at least one connection"),
            (&["--max-header-bytes", "1Ki"][..], "8Ki"),
            (&["--max-headers", "0"][..], "0"),
            (&["--trusted-proxy", "example.com"][..], "e.g. 10.0.0.0/8"),
            (&["--idle-timeout", "0s"][..], "greater than zero"),
        ] {
            let error = parse(args).err().unwrap_or_else(|| panic!("{args:?}"));
            assert!(error.to_string().contains(says), "{args:?}: {error}");
        }
    }
}
