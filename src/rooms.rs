//! The room index: which members are in which rooms, kept consistent in both directions.
//!
//! Pure data, generic over the member id, with no IO. Rooms are created by their first join
//! and dropped with their last leave, so an empty room costs nothing.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Rooms and their members, indexed both ways.
///
/// ```
/// use sioloop::rooms::RoomIndex;
/// let mut rooms = RoomIndex::default();
/// rooms.join(1, "match:7");
/// rooms.join(2, "match:7");
/// rooms.join(2, "lobby");
/// assert_eq!(rooms.select(&["match:7"], &["lobby"]), vec![1]);
/// assert_eq!(rooms.leave_all(&2).len(), 2);
/// assert_eq!(rooms.room_count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RoomIndex<M> {
    members: HashMap<String, HashSet<M>>,
    rooms_of: HashMap<M, HashSet<String>>,
}

impl<M> Default for RoomIndex<M> {
    fn default() -> Self {
        RoomIndex {
            members: HashMap::new(),
            rooms_of: HashMap::new(),
        }
    }
}

impl<M: Copy + Eq + Hash + Ord> RoomIndex<M> {
    /// Adds `member` to `room`. Returns false if it was already in it.
    pub fn join(&mut self, member: M, room: &str) -> bool {
        let added = self
            .members
            .entry(room.to_owned())
            .or_default()
            .insert(member);
        if added {
            self.rooms_of
                .entry(member)
                .or_default()
                .insert(room.to_owned());
        }
        added
    }

    /// Removes `member` from `room`. Returns false if it was not in it.
    pub fn leave(&mut self, member: M, room: &str) -> bool {
        let Some(set) = self.members.get_mut(room) else {
            return false;
        };
        if !set.remove(&member) {
            return false;
        }
        if set.is_empty() {
            self.members.remove(room);
        }
        if let Some(rooms) = self.rooms_of.get_mut(&member) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.rooms_of.remove(&member);
            }
        }
        true
    }

    /// Removes `member` from every room; returns the rooms it left.
    pub fn leave_all(&mut self, member: &M) -> Vec<String> {
        let Some(rooms) = self.rooms_of.remove(member) else {
            return Vec::new();
        };
        for room in &rooms {
            if let Some(set) = self.members.get_mut(room) {
                set.remove(member);
                if set.is_empty() {
                    self.members.remove(room);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Whether `member` is in `room`.
    pub fn contains(&self, member: &M, room: &str) -> bool {
        self.members.get(room).is_some_and(|s| s.contains(member))
    }

    /// The rooms `member` is in.
    pub fn rooms_of(&self, member: &M) -> impl Iterator<Item = &str> {
        self.rooms_of
            .get(member)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The members of `room`.
    pub fn members(&self, room: &str) -> impl Iterator<Item = &M> {
        self.members.get(room).into_iter().flatten()
    }

    /// The names of all non-empty rooms.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The number of non-empty rooms.
    pub fn room_count(&self) -> usize {
        self.members.len()
    }

    /// The members in any of `rooms`, minus those in any of `except`, each once. Sorted
    /// when it had to merge several rooms; one room's members come in the index's order.
    pub fn select<R: AsRef<str>, E: AsRef<str>>(&self, rooms: &[R], except: &[E]) -> Vec<M> {
        if let ([room], []) = (rooms, except) {
            // The common broadcast: a set has no duplicates, so no sort and no dedup.
            return self.members(room.as_ref()).copied().collect();
        }
        let excluded: HashSet<M> = except
            .iter()
            .flat_map(|r| self.members(r.as_ref()))
            .copied()
            .collect();
        let mut out: Vec<M> = rooms
            .iter()
            .flat_map(|r| self.members(r.as_ref()))
            .copied()
            .filter(|m| !excluded.contains(m))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_stay_consistent() {
        let mut idx = RoomIndex::default();
        assert!(idx.join(1u32, "a"));
        assert!(!idx.join(1, "a"));
        idx.join(1, "b");
        idx.join(2, "b");
        assert!(idx.contains(&1, "a"));
        let mut rooms: Vec<_> = idx.rooms_of(&1).collect();
        rooms.sort();
        assert_eq!(rooms, ["a", "b"]);
        assert!(idx.leave(1, "a"));
        assert!(!idx.leave(1, "a"));
        assert_eq!(idx.room_count(), 1, "an empty room is dropped");
        assert_eq!(idx.leave_all(&1), vec!["b".to_owned()]);
        assert_eq!(idx.leave_all(&2), vec!["b".to_owned()]);
        assert_eq!(idx.room_count(), 0);
        assert!(idx.rooms_of.is_empty());
    }

    #[test]
    fn select_unions_rooms_and_removes_excepts() {
        let mut idx = RoomIndex::default();
        for (m, r) in [
            (1u32, "a"),
            (2, "a"),
            (2, "b"),
            (3, "b"),
            (4, "c"),
            (3, "x"),
        ] {
            idx.join(m, r);
        }
        assert_eq!(idx.select(&["a", "b"], &[] as &[&str]), vec![1, 2, 3]);
        assert_eq!(idx.select(&["a", "b"], &["x"]), vec![1, 2]);
        assert_eq!(idx.select(&["nope"], &[] as &[&str]), Vec::<u32>::new());
        let mut one_room = idx.select(&["b"], &[] as &[&str]);
        one_room.sort();
        assert_eq!(one_room, vec![2, 3]);
    }
}
