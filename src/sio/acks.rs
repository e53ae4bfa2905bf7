//! Acknowledgements the server waits for: one socket's answer to `emit_with_ack`, or a
//! group of answers to a broadcast with ack, delivered or failed exactly once.

use super::dispatch::Io;
use super::{AckError, ServerCx, SocketKey};
use crate::server::Engine;
use crate::socketio::value::Payload;
use std::collections::HashSet;

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
