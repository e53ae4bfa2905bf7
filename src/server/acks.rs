//! Acknowledgements the server waits for: one socket's answer to `emit_with_ack`, or a
//! group of answers to a broadcast with ack, delivered or failed exactly once.

use super::dispatch::Io;
use super::{AckError, ServerCx, SocketKey};
use crate::engine::Engine;
use crate::protocol::socketio::value::Payload;
use std::collections::{BTreeMap, HashSet};

pub(super) type AckFn<S> = Box<dyn FnOnce(&mut ServerCx<'_, S>, Result<Payload, AckError>)>;
pub(super) type GroupAckFn<S> = Box<dyn FnOnce(&mut ServerCx<'_, S>, AckResults)>;

/// Who waits for an ack: a callback, or a group (by its slab index).
pub(super) enum AckWaiter<S> {
    One(AckFn<S>),
    Group(usize),
}

/// The acks of one broadcast, answered together when the last arrives or at the timeout.
pub(super) struct AckGroup<S> {
    pub(super) generation: u32,
    pub(super) waiting: HashSet<(SocketKey, u64)>,
    pub(super) responses: Vec<(String, Payload)>,
    pub(super) callback: Option<GroupAckFn<S>>,
}

/// The acks the server waits for, ordered by socket and then ack id, so the acks of one
/// socket are one range: closing a socket visits its own acks only. (A walk over every
/// pending ack per close made closing N sockets with acks in flight cost N².)
pub(super) struct PendingAcks<S> {
    waiters: BTreeMap<(SocketKey, u64), AckWaiter<S>>,
}

impl<S> Default for PendingAcks<S> {
    fn default() -> Self {
        PendingAcks {
            waiters: BTreeMap::new(),
        }
    }
}

impl<S> PendingAcks<S> {
    pub(super) fn insert(&mut self, ack: (SocketKey, u64), waiter: AckWaiter<S>) {
        self.waiters.insert(ack, waiter);
    }

    pub(super) fn remove(&mut self, ack: &(SocketKey, u64)) -> Option<AckWaiter<S>> {
        self.waiters.remove(ack)
    }

    /// Whether `ack` is awaited by a callback of its own (not by a group).
    pub(super) fn has_callback(&self, ack: &(SocketKey, u64)) -> bool {
        matches!(self.waiters.get(ack), Some(AckWaiter::One(_)))
    }

    /// The acks awaited from `socket`, in id order.
    pub(super) fn of_socket(&self, socket: SocketKey) -> Vec<(SocketKey, u64)> {
        self.waiters
            .range((socket, 0)..=(socket, u64::MAX))
            .map(|(ack, _)| *ack)
            .collect()
    }
}

/// The answers to a broadcast with acknowledgement.
#[derive(Debug)]
pub struct AckResults {
    /// The answers that arrived, with the id of the socket that sent each.
    pub responses: Vec<(String, Payload)>,
    /// Whether some recipients did not answer before the timeout.
    pub timed_out: bool,
}

impl<S: 'static> Io<S> {
    /// Delivers (or fails) one awaited acknowledgement.
    pub(super) fn finish_ack(
        &mut self,
        engine: &mut Engine,
        ack: (SocketKey, u64),
        result: Result<Payload, AckError>,
        socket_id: &str,
    ) {
        match self.core.acks.remove(&ack) {
            Some(AckWaiter::One(f)) => {
                f(
                    &mut ServerCx {
                        engine,
                        core: &mut self.core,
                    },
                    result,
                );
            }
            Some(AckWaiter::Group(g)) => {
                let Some(group) = self.core.groups.get_mut(g) else {
                    return;
                };
                group.waiting.remove(&ack);
                if let Ok(payload) = result {
                    group.responses.push((socket_id.to_owned(), payload));
                }
                if group.waiting.is_empty() {
                    self.finish_group(engine, g, false);
                }
            }
            None => return,
        }
        self.after_handler(engine);
    }

    /// Answers a group with what arrived (`timed_out`: some did not).
    pub(super) fn finish_group(&mut self, engine: &mut Engine, g: usize, timed_out: bool) {
        if !self.core.groups.contains(g) {
            return;
        }
        let group = self.core.groups.remove(g);
        for ack in &group.waiting {
            self.core.acks.remove(ack);
        }
        if let Some(f) = group.callback {
            let results = AckResults {
                responses: group.responses,
                timed_out: timed_out && !group.waiting.is_empty(),
            };
            f(
                &mut ServerCx {
                    engine,
                    core: &mut self.core,
                },
                results,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn socket(index: usize) -> SocketKey {
        SocketKey {
            index,
            generation: 1,
        }
    }

    #[test]
    fn a_sockets_acks_are_its_own_range() {
        let mut acks = PendingAcks::<()>::default();
        for (index, id) in [(1, 0), (2, 7), (1, 3), (0, 5), (2, u64::MAX)] {
            acks.insert((socket(index), id), AckWaiter::Group(0));
        }
        let stale = SocketKey {
            index: 2,
            generation: 0,
        };
        acks.insert((stale, 1), AckWaiter::Group(0));
        assert_eq!(
            acks.of_socket(socket(1)),
            vec![(socket(1), 0), (socket(1), 3)]
        );
        assert_eq!(
            acks.of_socket(socket(2)),
            vec![(socket(2), 7), (socket(2), u64::MAX)],
            "another generation of the slot is another socket"
        );
        assert!(acks.of_socket(socket(3)).is_empty());
        assert!(!acks.has_callback(&(socket(1), 0)), "a group's ack");
    }

    /// The scaling check is a ratio, so a slow machine cannot fool it: failing every
    /// socket's acks, one socket at a time, costs about N log N for N sockets, while a walk
    /// over all pending acks per socket (what closing a socket did) costs N². 8N against N
    /// should take about 10 times as long; N² would take 64 times. The bound is 32, and each
    /// size keeps its best of 3 runs, so one preempted run does not decide.
    #[test]
    fn failing_each_sockets_acks_scales_with_the_sockets() {
        fn fail_all(n: usize) -> Duration {
            let mut acks = PendingAcks::<()>::default();
            for index in 0..n {
                for id in 0..2 {
                    acks.insert((socket(index), id), AckWaiter::Group(0));
                }
            }
            let start = Instant::now();
            for index in 0..n {
                for ack in acks.of_socket(socket(index)) {
                    assert!(acks.remove(&ack).is_some());
                }
            }
            let took = start.elapsed();
            assert!(acks.waiters.is_empty());
            took
        }
        let best = |n| (0..3).map(|_| fail_all(n)).min().unwrap_or_default();
        let (small, large) = (best(2_000), best(16_000));
        let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
        assert!(
            ratio < 32.0,
            "8x the sockets took {ratio:.1}x as long ({small:?} vs {large:?})"
        );
    }
}
