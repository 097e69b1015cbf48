//! Gateway routing: from a request's `Host` (or HTTP/2 `:authority`) to the revision that
//! serves it, following Knative's URLs, traffic splits and tags. Pure logic with no I/O, so the
//! server can call it per request and tests can drive it with plain values.
//!
//! How the request path uses it:
//!
//! ```
//! use wisp_gateway::routing::{Domain, RouteConfig, RouteTable, Router, TrafficTarget};
//!
//! // Control plane side: build a table from the routes and publish it (swapped atomically).
//! let routes = vec![RouteConfig::new("default", "hello", vec![
//!     TrafficTarget::new("hello-00001", 90),
//!     TrafficTarget::new("hello-00002", 10).tagged("canary"),
//! ])];
//! let built = RouteTable::build(Domain::default(), routes);
//! assert!(built.problems.is_empty()); // else: report them on the Routes' status
//! let router = Router::new(built.table);
//!
//! // Request side: one lookup per request, then this hop's proxy headers.
//! let mut request = http::Request::get("/")
//!     .header("host", "canary-hello.default.localhost:8080")
//!     .body(())
//!     .unwrap();
//! let authority = wisp_gateway::routing::authority_of(&request).unwrap_or("").to_owned();
//! match router.lookup(&authority) {
//!     Ok(resolved) => assert_eq!(&*resolved.revision, "hello-00002"),
//!     Err(not_found) => { let _404_body = not_found.body(); }
//! }
//! let client: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
//! // The balancer in front is trusted to state earlier hops; anyone else's claims are dropped.
//! use wisp_gateway::routing::forwarded::{self, TrustedProxies};
//! let trusted = TrustedProxies::new([forwarded::parse_proxy("10.0.0.0/8").unwrap()]);
//! forwarded::apply(request.headers_mut(), client, "http", &authority, &trusted);
//! ```
//!
//! Modules: `config` (typed routes and validation), `host` (domain and host normalisation),
//! `split` (weighted pick and RNG), `table` (immutable host map), `router` (atomic swap),
//! `forwarded` (proxy headers).

pub mod config;
pub mod forwarded;
pub mod host;
pub mod router;
pub mod split;
pub mod table;

pub use config::{RouteConfig, RouteError, RouteProblem, TrafficTarget};
pub use host::{DEFAULT_DOMAIN, Domain, DomainError, authority_of};
pub use router::Router;
pub use split::WeightedTargets;
pub use table::{Built, Destination, HostEntry, NotFound, Resolved, RouteTable, not_found_body};
