//! A reflector store's first full list, as something any number of tasks can wait for at once.
//!
//! Why not kube-runtime's `Store::wait_until_ready`: all its waiters poll one
//! `futures::channel::oneshot::Receiver`, which keeps only the waker of the task that polled it
//! last. The controllers' reconciles each run on a task of their own, so when several of them
//! waited for the same store, only one was woken by its first list; the others waited forever,
//! holding their objects' slots, so every later trigger of those objects was held behind them
//! (and their resync was never scheduled). After a `wisp up` restart that is how Revisions kept
//! the conditions of the previous run: their reconciles started while the Node list was still
//! under way. Here a single task waits on the store and publishes the answer on a `watch`
//! channel, which wakes every waiter.

use std::hash::Hash;

use kube::runtime::reflector::{Lookup, Store};
use tokio::sync::watch;

/// Whether a store has had its first full list. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct StoreReady {
    listed: watch::Receiver<bool>,
}

impl StoreReady {
    /// Follows `store`'s first full list (spawns the one task that waits on it; it ends with
    /// the list, or when the store's writer is dropped).
    pub(crate) fn of<K>(store: &Store<K>) -> Self
    where
        K: Lookup + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Send + Sync,
    {
        let (sender, listed) = watch::channel(false);
        let store = store.clone();
        tokio::spawn(async move {
            // An error means the writer is gone: the dropped sender tells the waiters.
            if store.wait_until_ready().await.is_ok() {
                sender.send_replace(true);
            }
        });
        Self { listed }
    }

    /// Follows a flag its sender sets once the store had its first list: for a store that a
    /// kube-runtime `Controller` also waits on. Two tasks waiting on one store's readiness
    /// is the trap this module exists for (only the last to poll is woken), and a
    /// `Controller` whose reader is the store always waits on it.
    pub(crate) fn following(listed: watch::Receiver<bool>) -> Self {
        Self { listed }
    }

    /// Waits for the first full list; returns at once after it, and also when the store's
    /// writer is gone (the controller is stopping: it reads what it has).
    pub(crate) async fn wait(&self) {
        let mut listed = self.listed.clone();
        let _ = listed.wait_for(|listed| *listed).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{reflector, watcher};

    use super::*;

    /// Generous: the waiters are woken at once or never.
    const DEADLINE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn every_waiter_is_woken_by_the_first_list() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let ready = StoreReady::of(&store);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let ready = ready.clone();
                tokio::spawn(async move { ready.wait().await })
            })
            .collect();
        // Every waiter has polled (and parked) before the list completes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for waiter in waiters {
            tokio::time::timeout(DEADLINE, waiter)
                .await
                .expect("a waiter was never woken")
                .expect("the waiter ran");
        }
        // Later waiters return at once.
        tokio::time::timeout(DEADLINE, ready.wait())
            .await
            .expect("ready");
    }

    #[tokio::test]
    async fn waiters_return_when_the_writer_is_gone() {
        let (store, writer) = reflector::store::<ConfigMap>();
        let ready = StoreReady::of(&store);
        drop(writer);
        tokio::time::timeout(DEADLINE, ready.wait())
            .await
            .expect("a dropped writer ends the wait");
    }
}
