//! The tasks waiting for one event ([`WakerList`]): each waiting future registers its
//! [`Waker`] under a key, re-registers on every poll, and takes it out when it is dropped, so a
//! future given up by `select!` or a timeout leaves nothing behind. The event side takes the whole
//! list at once and wakes it outside any lock.
//!
//! A leaf: no knowledge of processes or of the executor; the caller holds the list in whatever
//! lock guards the event it is about.

use std::task::Waker;

/// The wakers of the tasks waiting for one event, each under the key its future holds.
#[derive(Default)]
pub(crate) struct WakerList {
    next_key: u64,
    wakers: Vec<(u64, Waker)>,
}

impl WakerList {
    /// Stores `waker` under `key` (a fresh key when `None`), replacing the one stored there
    /// before unless it would wake the same task anyway.
    pub(crate) fn register(&mut self, key: &mut Option<u64>, waker: &Waker) {
        if let Some(k) = *key
            && let Some((_, stored)) = self.wakers.iter_mut().find(|(sk, _)| *sk == k)
        {
            if !stored.will_wake(waker) {
                stored.clone_from(waker);
            }
            return;
        }
        let k = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        self.wakers.push((k, waker.clone()));
        *key = Some(k);
    }

    /// Removes the waker stored under `key`, if any (its future is gone or done).
    pub(crate) fn remove(&mut self, key: Option<u64>) {
        if let Some(k) = key
            && let Some(i) = self.wakers.iter().position(|(sk, _)| *sk == k)
        {
            self.wakers.swap_remove(i);
        }
    }

    /// Takes every waker; call [`wake_all`] on the result once the lock is released.
    pub(crate) fn take(&mut self) -> Vec<(u64, Waker)> {
        std::mem::take(&mut self.wakers)
    }

    /// How many tasks wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.wakers.len()
    }
}

/// Wakes every waker of a list taken with [`WakerList::take`].
pub(crate) fn wake_all(wakers: Vec<(u64, Waker)>) {
    for (_, w) in wakers {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::counting_waker as counter;

    #[test]
    fn a_repoll_replaces_instead_of_growing_and_remove_forgets() {
        let mut list = WakerList::default();
        let (first, w1) = counter();
        let (second, w2) = counter();
        let mut key = None;
        list.register(&mut key, &w1);
        list.register(&mut key, &w1);
        assert_eq!(list.len(), 1);
        // Polled from another task: the newest waker wins.
        list.register(&mut key, &w2);
        assert_eq!(list.len(), 1);
        let mut other = None;
        list.register(&mut other, &w1);
        assert_eq!(list.len(), 2);
        assert_ne!(key, other);
        list.remove(other);
        assert_eq!(list.len(), 1);
        wake_all(list.take());
        assert_eq!(first.wakes(), 0);
        assert_eq!(second.wakes(), 1);
        assert_eq!(list.len(), 0);
        // Removing a key that was taken is harmless.
        list.remove(key);
        list.remove(None);
    }
}
