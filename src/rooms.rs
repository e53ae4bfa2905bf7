//! The room index: which members are in which rooms, kept consistent in both directions.
//!
//! Pure data, generic over the member id, with no IO. Rooms are created by their first join
//! and dropped with their last leave, so an empty room costs nothing.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

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
    /// Room name -> members. The name is allocated once and shared with `rooms_of`.
    members: HashMap<Arc<str>, Members<M>>,
    /// Member -> the names of its rooms.
    rooms_of: HashMap<M, RoomList>,
}

/// The members of one room. Most rooms in a Socket.IO server have one member (every socket
/// is in the room of its own id), so that case holds no set.
#[derive(Debug, Clone)]
enum Members<M> {
    One(M),
    // Boxed on purpose: a `HashSet` with its hasher is 48 bytes inline, and this enum is the
    // value of every room's map slot, most of which hold `One`.
    #[allow(clippy::box_collection)]
    Many(Box<HashSet<M>>),
}

/// The rooms of one member: most members are in one or a few rooms, so a short list that is
/// searched linearly (joins are bounded by `max_rooms_per_socket`).
#[derive(Debug, Clone)]
enum RoomList {
    One(Arc<str>),
    Many(Vec<Arc<str>>),
}

impl RoomList {
    fn iter(&self) -> std::slice::Iter<'_, Arc<str>> {
        match self {
            RoomList::One(room) => std::slice::from_ref(room).iter(),
            RoomList::Many(rooms) => rooms.iter(),
        }
    }

    fn push(&mut self, room: Arc<str>) {
        match self {
            RoomList::One(first) => *self = RoomList::Many(vec![first.clone(), room]),
            RoomList::Many(rooms) => rooms.push(room),
        }
    }

    /// Removes `room`; returns whether the list is now empty.
    fn remove(&mut self, room: &str) -> bool {
        match self {
            RoomList::One(r) => &**r == room,
            RoomList::Many(rooms) => {
                rooms.retain(|r| &**r != room);
                match rooms.len() {
                    0 => true,
                    1 => {
                        *self = RoomList::One(rooms[0].clone());
                        false
                    }
                    _ => false,
                }
            }
        }
    }
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
        self.join_with(member, room, || Arc::from(room))
    }

    /// [`join`](Self::join) with the room's name already allocated: a new room keeps this
    /// `Arc` as its name, so a caller that holds the name anyway (a socket's own id) does not
    /// pay for a second copy.
    pub fn join_shared(&mut self, member: M, room: Arc<str>) -> bool {
        let name = room.clone();
        self.join_with(member, &room, move || name)
    }

    fn join_with(&mut self, member: M, room: &str, name: impl FnOnce() -> Arc<str>) -> bool {
        let name = match self.members.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => {
                let name = name();
                self.members.insert(name.clone(), Members::One(member));
                self.add_room_of(member, name);
                return true;
            }
        };
        let Some(entry) = self.members.get_mut(room) else {
            return false;
        };
        match entry {
            Members::One(m) if *m == member => return false,
            Members::One(m) => {
                let first = *m;
                *entry = Members::Many(Box::new(HashSet::from([first, member])));
            }
            Members::Many(set) => {
                if !set.insert(member) {
                    return false;
                }
            }
        }
        self.add_room_of(member, name);
        true
    }

    fn add_room_of(&mut self, member: M, room: Arc<str>) {
        match self.rooms_of.get_mut(&member) {
            Some(list) => list.push(room),
            None => {
                self.rooms_of.insert(member, RoomList::One(room));
            }
        }
    }

    /// Takes `member` out of the member set of `room` (dropping the room once empty).
    /// Returns false if it was not in it.
    fn remove_member(&mut self, member: &M, room: &str) -> bool {
        let Some(entry) = self.members.get_mut(room) else {
            return false;
        };
        match entry {
            Members::One(m) => {
                if m != member {
                    return false;
                }
                self.members.remove(room);
            }
            Members::Many(set) => {
                if !set.remove(member) {
                    return false;
                }
                // Back to the set-less form, so a crowd that left costs nothing.
                if set.len() == 1
                    && let Some(last) = set.iter().next().copied()
                {
                    *entry = Members::One(last);
                }
            }
        }
        true
    }

    /// Removes `member` from `room`. Returns false if it was not in it.
    pub fn leave(&mut self, member: M, room: &str) -> bool {
        if !self.remove_member(&member, room) {
            return false;
        }
        if let Some(rooms) = self.rooms_of.get_mut(&member)
            && rooms.remove(room)
        {
            self.rooms_of.remove(&member);
        }
        true
    }

    /// Removes `member` from every room; returns the rooms it left.
    pub fn leave_all(&mut self, member: &M) -> Vec<String> {
        let Some(rooms) = self.rooms_of.remove(member) else {
            return Vec::new();
        };
        let mut left = Vec::new();
        for room in rooms.iter() {
            self.remove_member(member, room);
            left.push(room.to_string());
        }
        left
    }

    /// Whether `member` is in `room`.
    pub fn contains(&self, member: &M, room: &str) -> bool {
        match self.members.get(room) {
            Some(Members::One(m)) => m == member,
            Some(Members::Many(set)) => set.contains(member),
            None => false,
        }
    }

    /// The rooms `member` is in.
    pub fn rooms_of(&self, member: &M) -> impl Iterator<Item = &str> {
        self.rooms_of
            .get(member)
            .into_iter()
            .flat_map(RoomList::iter)
            .map(|r| &**r)
    }

    /// The members of `room`.
    pub fn members(&self, room: &str) -> impl Iterator<Item = &M> {
        let (one, many) = match self.members.get(room) {
            Some(Members::One(m)) => (Some(m), None),
            Some(Members::Many(set)) => (None, Some(set.iter())),
            None => (None, None),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// The names of all non-empty rooms.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(|r| &**r)
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

    /// Random joins and leaves against a plain model of sets: both directions agree with it
    /// after every step, through the one-member and many-member forms and back.
    #[test]
    fn agrees_with_a_model_under_random_operations() {
        use std::collections::{BTreeMap, BTreeSet};
        let mut idx = RoomIndex::default();
        let mut model: BTreeMap<String, BTreeSet<u8>> = BTreeMap::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let r = next();
            let member = (r % 6) as u8;
            let room = format!("r{}", (r >> 8) % 5);
            match (r >> 16) % 8 {
                0..=3 => {
                    let added = model.entry(room.clone()).or_default().insert(member);
                    let joined = if (r >> 24) & 1 == 0 {
                        idx.join(member, &room)
                    } else {
                        idx.join_shared(member, Arc::from(room.as_str()))
                    };
                    assert_eq!(joined, added);
                }
                4..=6 => {
                    let removed = model.get_mut(&room).is_some_and(|m| m.remove(&member));
                    assert_eq!(idx.leave(member, &room), removed);
                }
                _ => {
                    let mut expected: Vec<String> = model
                        .iter_mut()
                        .filter_map(|(name, m)| m.remove(&member).then(|| name.clone()))
                        .collect();
                    let mut left = idx.leave_all(&member);
                    left.sort();
                    expected.sort();
                    assert_eq!(left, expected);
                }
            }
            model.retain(|_, m| !m.is_empty());
            assert_eq!(idx.room_count(), model.len());
            for (name, m) in &model {
                let mut got: Vec<u8> = idx.members(name).copied().collect();
                got.sort();
                assert_eq!(
                    got,
                    m.iter().copied().collect::<Vec<_>>(),
                    "members of {name}"
                );
            }
            for member in 0..6u8 {
                let mut got: Vec<&str> = idx.rooms_of(&member).collect();
                got.sort();
                let expected: Vec<&str> = model
                    .iter()
                    .filter(|(_, m)| m.contains(&member))
                    .map(|(n, _)| n.as_str())
                    .collect();
                assert_eq!(got, expected, "rooms of {member}");
            }
        }
    }
}
