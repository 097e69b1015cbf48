//! The live route table, shared by every connection and replaced whole on configuration change.
//!
//! A request takes a snapshot (`Arc` clone under a read lock held for nanoseconds, never across
//! an await) and routes against it, so it sees one complete table: the old or the new, never a
//! half-applied one. Writers build the next table off to the side and swap the `Arc` in. A
//! `RwLock<Arc<_>>` stands in for an arc-swap crate: readers never contend with each other, and
//! writes are rare.

use std::sync::{Arc, RwLock};

use super::split::thread_random;
use super::table::{NotFound, Resolved, RouteTable};

/// Cloneable handle to the current [`RouteTable`].
#[derive(Clone, Debug, Default)]
pub struct Router {
    current: Arc<RwLock<Arc<RouteTable>>>,
}

impl Router {
    pub fn new(table: RouteTable) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(table))),
        }
    }

    /// The table in effect now. Route several lookups against one snapshot to see one version.
    pub fn snapshot(&self) -> Arc<RouteTable> {
        // A poisoned lock still holds a whole `Arc` (the swap is a single move), so keep going.
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Publishes `table` for every later request and returns the one it replaced. Requests
    /// already holding a snapshot finish on the old table.
    pub fn replace(&self, table: RouteTable) -> Arc<RouteTable> {
        let table = Arc::new(table);
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *guard, table)
    }

    /// Routes one request by its `Host` / `:authority`, picking within a split with this
    /// thread's random generator.
    pub fn lookup(&self, authority: &str) -> Result<Resolved, NotFound> {
        self.snapshot().resolve(authority, thread_random())
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{RouteConfig, TrafficTarget};
    use super::super::host::Domain;
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    const ROUTES: usize = 20;

    /// Version `v` of a configuration: every route splits between `v{v}-a` and `v{v}-b`, and has
    /// a tag `pin` on `v{v}-c`; only version 1 has route `extra`.
    fn version(v: u32) -> RouteTable {
        let mut routes: Vec<RouteConfig> = (0..ROUTES)
            .map(|i| {
                RouteConfig::new(
                    "ns",
                    format!("r{i}"),
                    vec![
                        TrafficTarget::new(format!("v{v}-a"), 50),
                        TrafficTarget::new(format!("v{v}-b"), 50),
                        TrafficTarget::new(format!("v{v}-c"), 0).tagged("pin"),
                    ],
                )
            })
            .collect();
        if v == 1 {
            routes.push(RouteConfig::new(
                "ns",
                "extra",
                vec![TrafficTarget::new("v1-a", 100)],
            ));
        }
        RouteTable::try_build(Domain::default(), routes).unwrap()
    }

    fn version_of(revision: &str) -> &str {
        revision.split('-').next().unwrap()
    }

    #[test]
    fn lookup_and_replace() {
        let router = Router::new(version(1));
        assert_eq!(
            version_of(&router.lookup("r0.ns.localhost").unwrap().revision),
            "v1"
        );
        assert!(router.lookup("extra.ns.localhost").is_ok());
        let old = router.replace(version(2));
        assert!(old.entry("extra.ns.localhost").is_some());
        assert_eq!(
            version_of(&router.lookup("r0.ns.localhost").unwrap().revision),
            "v2"
        );
        assert!(router.lookup("extra.ns.localhost").is_err());
        assert!(Router::default().lookup("r0.ns.localhost").is_err());
    }

    #[test]
    fn readers_always_see_one_whole_table_during_swaps() {
        let router = Router::new(version(1));
        let tables = [Arc::new(version(1)), Arc::new(version(2))];
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let router = router.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut seen = [0usize; 2];
                    let mut rounds = 0;
                    while !done.load(Ordering::Relaxed) || rounds < 100 {
                        rounds += 1;
                        // Every host of one snapshot comes from the same version.
                        let table = router.snapshot();
                        let first = table.resolve("r0.ns.localhost", 0).unwrap();
                        let v = version_of(&first.revision).to_owned();
                        for i in 0..ROUTES {
                            let host = format!("r{i}.ns.localhost");
                            let r = table
                                .resolve(&host, (i as u64).wrapping_mul(0x1111_1111_1111_1111));
                            assert_eq!(version_of(&r.unwrap().revision), v);
                            let pin = table.resolve(&format!("pin-r{i}.ns.localhost"), 0);
                            assert_eq!(&*pin.unwrap().revision, format!("{v}-c"));
                        }
                        assert_eq!(table.resolve("extra.ns.localhost", 0).is_ok(), v == "v1");
                        // And a bare lookup always resolves, to one version or the other.
                        let r = router.lookup("r7.ns.localhost").unwrap();
                        assert!(matches!(version_of(&r.revision), "v1" | "v2"));
                        seen[usize::from(v == "v2")] += 1;
                    }
                    seen
                })
            })
            .collect();
        for i in 0..2_000 {
            let table = &tables[i % 2];
            router.replace(RouteTable::clone(table));
            if i % 64 == 0 {
                std::thread::yield_now();
            }
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            let seen = reader.join().unwrap();
            assert!(seen.iter().sum::<usize>() >= 100);
        }
    }
}
