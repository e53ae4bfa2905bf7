//! The chat's SQLite store, owned by one worker thread: handlers queue a [`Job`] and return
//! at once; the worker does the database work and reports back through the server's
//! [`Handle`], whose commands run on the loop thread.

use serde::Serialize;
use sioloop::Handle;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many messages a history reply carries at most.
const HISTORY: i64 = 50;

/// A message in a room, as the page gets it. Ids come from the database, so a message that
/// reaches a tab both live and in a history reply is shown once.
#[derive(Clone, Debug, Serialize)]
pub struct RoomMessage {
    pub id: i64,
    pub room: String,
    pub from: String,
    pub text: String,
    pub ts: i64,
}

/// A private message, as the page gets it.
#[derive(Clone, Debug, Serialize)]
pub struct Private {
    pub id: i64,
    pub from: String,
    pub to: String,
    pub text: String,
    pub ts: i64,
}

/// Work for the database thread.
pub enum Job {
    /// Store a room message, then send it to the room.
    SaveRoom {
        room: String,
        from: String,
        text: String,
    },
    /// Store a private message, then send it to every tab of both users.
    SavePrivate {
        from: String,
        to: String,
        text: String,
    },
    /// Send one socket (`reply_to`, its id room) the room's messages newer than `since`.
    RoomHistory {
        room: String,
        since: i64,
        reply_to: String,
    },
    /// Send one socket the private messages to or from `user` newer than `since`: what it
    /// missed while it was offline or reconnecting.
    PrivateHistory {
        user: String,
        since: i64,
        reply_to: String,
    },
}

/// Opens (creating it on first run) the database.
pub fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS room_messages (
             id INTEGER PRIMARY KEY, room TEXT NOT NULL, sender TEXT NOT NULL,
             text TEXT NOT NULL, ts INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS room_messages_by_room ON room_messages (room, id);
         CREATE TABLE IF NOT EXISTS private_messages (
             id INTEGER PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,
             text TEXT NOT NULL, ts INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS private_by_recipient ON private_messages (recipient, id);
         CREATE INDEX IF NOT EXISTS private_by_sender ON private_messages (sender, id);",
    )?;
    Ok(db)
}

/// Starts the worker. It stops when every sender of `jobs` is gone (the server's state is
/// dropped after `run` returns), after finishing the jobs already queued.
pub fn spawn<S: 'static>(
    db: rusqlite::Connection,
    jobs: mpsc::Receiver<Job>,
    handle: Handle<S>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for job in jobs {
            if let Err(e) = run(&db, job, &handle) {
                eprintln!("chat: database error: {e}");
            }
        }
    })
}

fn run<S: 'static>(
    db: &rusqlite::Connection,
    job: Job,
    handle: &Handle<S>,
) -> rusqlite::Result<()> {
    match job {
        Job::SaveRoom { room, from, text } => {
            let ts = now_ms();
            db.execute(
                "INSERT INTO room_messages (room, sender, text, ts) VALUES (?1, ?2, ?3, ?4)",
                (&room, &from, &text, ts),
            )?;
            let id = db.last_insert_rowid();
            let target = format!("room:{room}");
            let msg = RoomMessage {
                id,
                room,
                from,
                text,
                ts,
            };
            // Serialized here, on the worker; the loop only queues the bytes.
            handle.emit("/", Some(&target), "message", &msg);
        }
        Job::SavePrivate { from, to, text } => {
            let ts = now_ms();
            db.execute(
                "INSERT INTO private_messages (sender, recipient, text, ts) VALUES (?1, ?2, ?3, ?4)",
                (&from, &to, &text, ts),
            )?;
            let id = db.last_insert_rowid();
            let msg = Private {
                id,
                from,
                to,
                text,
                ts,
            };
            // To both users' rooms in one emit: every tab of the recipient and the sender's
            // other tabs. A socket in both rooms (a note to oneself) gets it once. If the
            // recipient is offline nobody gets it now; it waits in the table.
            handle.run(move |cx| {
                cx.to(format!("user:{}", msg.to))
                    .to(format!("user:{}", msg.from))
                    .emit("private", &msg);
            });
        }
        Job::RoomHistory {
            room,
            since,
            reply_to,
        } => {
            // The newest HISTORY messages after `since`, oldest first.
            let mut query = db.prepare_cached(
                "SELECT id, room, sender, text, ts FROM (
                     SELECT * FROM room_messages WHERE room = ?1 AND id > ?2
                     ORDER BY id DESC LIMIT ?3)
                 ORDER BY id",
            )?;
            let messages = query
                .query_map((&room, since, HISTORY), |r| {
                    Ok(RoomMessage {
                        id: r.get(0)?,
                        room: r.get(1)?,
                        from: r.get(2)?,
                        text: r.get(3)?,
                        ts: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let reply = serde_json::json!({ "room": room, "messages": messages });
            // Every socket is in a room named after its id; if it has gone meanwhile, this
            // reaches nobody.
            handle.emit("/", Some(&reply_to), "history", &reply);
        }
        Job::PrivateHistory {
            user,
            since,
            reply_to,
        } => {
            let mut query = db.prepare_cached(
                "SELECT id, sender, recipient, text, ts FROM (
                     SELECT * FROM private_messages
                     WHERE (recipient = ?1 OR sender = ?1) AND id > ?2
                     ORDER BY id DESC LIMIT ?3)
                 ORDER BY id",
            )?;
            let messages = query
                .query_map((&user, since, HISTORY), |r| {
                    Ok(Private {
                        id: r.get(0)?,
                        from: r.get(1)?,
                        to: r.get(2)?,
                        text: r.get(3)?,
                        ts: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            handle.emit("/", Some(&reply_to), "private_history", &messages);
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
