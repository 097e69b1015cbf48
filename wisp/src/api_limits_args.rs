//! The API server's request limits on the command line, named and defaulted as kube-apiserver's
//! flags so an operator's habits carry over; shared by `wisp up` and `wisp api-server`.

use std::time::Duration;

use wisp_control::apiserver::limits::{
    DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT, DEFAULT_MAX_REQUESTS_INFLIGHT, RequestLimits,
};
use wisp_control::apiserver::{ApiServerConfig, DEFAULT_MAX_STREAMS_PER_CONNECTION};

use crate::cli_values;

#[derive(clap::Args, Debug, Clone)]
pub struct ApiLimitsArgs {
    /// Read-only API requests (get, list) served at once; more are answered 429 with
    /// Retry-After: 1. Watches are not counted. 0 removes the cap.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REQUESTS_INFLIGHT)]
    max_requests_inflight: usize,
    /// Mutating API requests (create, update, patch, delete) served at once; more are answered
    /// 429 with Retry-After: 1. 0 removes the cap.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT)]
    max_mutating_requests_inflight: usize,
    /// How long an API request other than a watch may run before it is answered 504 and
    /// abandoned (watches end after their own timeoutSeconds). E.g. 60s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = cli_values::duration)]
    request_timeout: Duration,
    /// Concurrent requests (HTTP/2 streams) one client connection may have open, watches
    /// included; a client that needs more opens another connection.
    #[arg(
        long = "http2-max-streams-per-connection",
        value_name = "N",
        default_value_t = DEFAULT_MAX_STREAMS_PER_CONNECTION,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    http2_max_streams: u32,
}

impl ApiLimitsArgs {
    /// Puts the limits into `config`.
    pub fn apply(&self, config: &mut ApiServerConfig) {
        config.limits = RequestLimits {
            max_requests_inflight: self.max_requests_inflight,
            max_mutating_requests_inflight: self.max_mutating_requests_inflight,
            request_timeout: self.request_timeout,
        };
        config.max_streams_per_connection = self.http2_max_streams;
    }
}
