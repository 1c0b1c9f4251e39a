//! The readiness of the async I/O sources in the loop's epoll set ([`IoRegistry`]), one
//! [`Readiness`] per source: a count of the readiness edges the loop saw, and the tasks waiting
//! for the next one.
//!
//! A leaf: it knows wakers, not descriptors or the loop. The loop calls [`IoRegistry::ready`]
//! for each edge; a task that found its descriptor not ready ([`EAGAIN`]) waits with
//! [`Readiness::poll_edge`], passing the count it read *before* its try, so that an edge that came
//! between its try and its wait is not missed (edge-triggered epoll reports each edge once).
//!
//! [`EAGAIN`]: rustix::io::Errno::AGAIN

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use crate::waker_list::{WakerList, wake_all};

/// Every registered source's readiness, by id (ids are never reused).
#[derive(Default)]
pub(crate) struct IoRegistry {
    next_id: AtomicU64,
    sources: Mutex<HashMap<u64, Arc<Readiness>>>,
}

/// One source's readiness edges and waiting tasks.
#[derive(Default)]
pub(crate) struct Readiness(Mutex<Edges>);

#[derive(Default)]
struct Edges {
    count: u64,
    /// The registry is gone (the executor was dropped): no edge will come any more.
    closed: bool,
    wakers: WakerList,
}

impl IoRegistry {
    /// A new source: its id and readiness.
    pub(crate) fn insert(&self) -> (u64, Arc<Readiness>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let readiness = Arc::new(Readiness::default());
        self.lock().insert(id, readiness.clone());
        (id, readiness)
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// The loop saw source `id` turn ready: counts the edge and wakes its tasks (outside any
    /// lock). An id already removed is ignored.
    pub(crate) fn ready(&self, id: u64) {
        let found = self.lock().get(&id).cloned();
        if let Some(readiness) = found {
            readiness.edge();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Readiness>>> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for IoRegistry {
    /// The executor is gone: its loop will report no more edges. Tasks still waiting are woken
    /// to find that out ([`Readiness::poll_edge`] then errs) instead of waiting for ever.
    fn drop(&mut self) {
        let sources = std::mem::take(&mut *self.lock());
        for readiness in sources.into_values() {
            let wakers = {
                let mut edges = readiness.lock();
                edges.closed = true;
                edges.wakers.take()
            };
            wake_all(wakers);
        }
    }
}

impl Readiness {
    fn lock(&self) -> MutexGuard<'_, Edges> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many edges were seen so far: read before trying the descriptor.
    pub(crate) fn edges(&self) -> u64 {
        self.lock().count
    }

    fn edge(&self) {
        let wakers = {
            let mut edges = self.lock();
            edges.count = edges.count.wrapping_add(1);
            edges.wakers.take()
        };
        wake_all(wakers);
    }

    /// Ready when an edge came since the count `seen`; else registers the task under `key`.
    /// An error once the executor is gone (no edge can come).
    pub(crate) fn poll_edge(
        &self,
        seen: u64,
        cx: &mut Context<'_>,
        key: &mut Option<u64>,
    ) -> Poll<io::Result<()>> {
        let mut edges = self.lock();
        if edges.count != seen {
            edges.wakers.remove(key.take());
            return Poll::Ready(Ok(()));
        }
        if edges.closed {
            edges.wakers.remove(key.take());
            return Poll::Ready(Err(executor_gone()));
        }
        edges.wakers.register(key, cx.waker());
        Poll::Pending
    }

    /// Forgets the task registered under `key` (its future was dropped).
    pub(crate) fn forget(&self, key: Option<u64>) {
        if key.is_some() {
            self.lock().wakers.remove(key);
        }
    }
}

/// What an async read, write or timer says once no executor loop can wake it.
pub(crate) fn executor_gone() -> io::Error {
    io::Error::other(
        "the executor was dropped: no loop is left to wake this async read, write or timer",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::counting_waker;

    #[test]
    fn an_edge_after_the_try_is_not_missed_and_wakes_the_task() {
        let registry = IoRegistry::default();
        let (id, readiness) = registry.insert();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut key = None;
        let seen = readiness.edges();
        // The edge comes between the try (EAGAIN) and the wait.
        registry.ready(id);
        assert!(readiness.poll_edge(seen, &mut cx, &mut key).is_ready());
        let seen = readiness.edges();
        assert!(readiness.poll_edge(seen, &mut cx, &mut key).is_pending());
        registry.ready(id);
        assert_eq!(count.wakes(), 1);
        registry.remove(id);
        registry.ready(id); // ignored
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn dropping_the_registry_wakes_waiters_with_an_error() {
        let registry = IoRegistry::default();
        let (_, readiness) = registry.insert();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut key = None;
        let seen = readiness.edges();
        assert!(readiness.poll_edge(seen, &mut cx, &mut key).is_pending());
        drop(registry);
        assert_eq!(count.wakes(), 1);
        match readiness.poll_edge(seen, &mut cx, &mut key) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("executor was dropped")),
            other => panic!("expected the gone error, got {other:?}"),
        }
    }
}
