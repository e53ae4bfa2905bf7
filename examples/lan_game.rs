//! A LAN game server: a lobby pairs players into two-player matches, each match is a room
//! (`match:{n}`) that gets its state 30 times a second, and players steer with acked inputs.
//! The whole world is a plain struct owned by the loop; every handler gets `&mut` to it.
//!
//! Everything is on the namespace `/`. The bots in `tests/js/lan_game_bots.mjs` play it.
//!
//! | client → server | arguments     | ack                                                        |
//! |-----------------|---------------|------------------------------------------------------------|
//! | `join_lobby`    | `{name}`      | `{ok: true, waiting}` or `{ok: false, error}`              |
//! | `input`         | `{dx, dy}`, each -1, 0 or 1 | `{accepted: true, tick}`: the first tick whose state shows it; or `{accepted: false, reason}` |
//! | `status`        | none          | `{waiting: [names], matches: [rooms], rooms: [match rooms in the room index]}` |
//!
//! | server → client | arguments                                                             |
//! |-----------------|-----------------------------------------------------------------------|
//! | `match_start`   | `{match, slot, tick_hz, ticks, arena, you: {id, name, x, y, away}, opponent: {...}}` |
//! | `state`         | volatile, every tick: `{match, tick, players: [{id, name, x, y, away}, ...]}` |
//! | `match_resume`  | to a player back from a dropped connection: `{match, slot, tick, you, opponent}` |
//! | `match_end`     | `{match, tick, reason: "time_up" \| "opponent_left", detail}`          |
//!
//! Connection state recovery is on: every event but `state` carries the recovery offset as
//! an extra, last argument (the official client passes it to listeners too, as with the
//! Node server), and a player whose connection drops (`transport close`, `ping timeout`,
//! ...) and comes back within the window (`--recovery-seconds`) is the same socket again,
//! still in its match room, and gets the events it missed (not the volatile `state`s).
//!
//! A player moves one unit per tick in the direction of their last input, inside a square
//! arena. A player whose connection drops mid-match is `away`: their slot stops and the
//! match goes on; back in time, they get `match_resume` and steer again. A player who does
//! not come back within the window, or who leaves deliberately (`socket.disconnect()`, or
//! with recovery off any drop), ends the match: the other player gets `match_end` with
//! reason `opponent_left` (and the server's disconnect reason as `detail`), leaves the
//! room, and may `join_lobby` again. (Playing on against a bot is the other choice; ending
//! the match keeps the example short and the outcome plain to the player left behind.) A
//! player waiting in the lobby keeps their place while away but is not paired until back.
//!
//! ```text
//! cargo run --release --example lan_game -- [--host 0.0.0.0] [--port 3000] [--match-seconds 120] [--recovery-seconds 30] [--client-js PATH]
//! ```
//!
//! Open `http://HOST:PORT/` in two browsers to play (`examples/shared/lan_game.html`). The
//! page loads the official client from its CDN, or, with `--client-js PATH` (a copy of
//! `socket.io.min.js`), from this server: a LAN without internet access.

use serde::Serialize;
use serde_json::{Value, json};
use sioloop::{
    Config, DisconnectReason, RateLimit, RateLimitAction, RecoveryConfig, Server, ServerCx,
    SocketCx, TimerId,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[path = "shared/page.rs"]
mod page;

const TICK_HZ: u64 = 30;
/// The arena is the square `0..=ARENA` on both axes.
const ARENA: i32 = 100;
/// Where the two slots of a match start.
const START: [(i32, i32); 2] = [(20, 50), (80, 50)];
/// How long a dropped player may take to come back, by default. A LAN drop (Wi-Fi roaming
/// between access points, a laptop lid closed and opened, a cable moved) is over in
/// seconds; 30 s covers those with room to spare, while the reference server's 2 minutes
/// would be a whole match of the opponent playing alone.
const RECOVERY_SECONDS: u64 = 30;

/// The world, owned by the loop.
#[derive(Default)]
struct Game {
    /// Socket ids waiting for a match, first come first served.
    lobby: VecDeque<String>,
    /// Everyone who joined the lobby, by socket id.
    players: HashMap<String, Player>,
    /// Running matches by number (ordered, so `status` lists them in order).
    matches: BTreeMap<u64, Match>,
    next_match: u64,
    /// How many ticks a match lasts.
    match_ticks: u64,
    /// The connection state recovery window (`None`: recovery is off, every drop is final).
    recovery: Option<Duration>,
}

struct Player {
    name: String,
    in_match: Option<u64>,
    /// While the player's connection is down and may come back: the timer that gives up
    /// on them when the recovery window is over.
    away: Option<TimerId>,
}

struct Match {
    room: String,
    /// The last tick simulated (0 until the first one).
    tick: u64,
    players: [Slot; 2],
}

#[derive(Clone, Serialize)]
struct Slot {
    id: String,
    name: String,
    x: i32,
    y: i32,
    /// Whether the player's connection is down (they may come back): their opponent can
    /// tell a stopped player from an absent one.
    away: bool,
    /// The direction of the last input; not part of the broadcast state.
    #[serde(skip)]
    dir: (i32, i32),
}

#[derive(Serialize)]
struct State {
    #[serde(rename = "match")]
    room: String,
    tick: u64,
    players: [Slot; 2],
}

/// Pairs waiting players who are not away, oldest first, into new matches.
fn start_matches(cx: &mut ServerCx<'_, Game>) {
    loop {
        let game = cx.state();
        // The lobby holds only players (`join_lobby` adds both); an away one keeps its place.
        let ready: Vec<usize> = game
            .lobby
            .iter()
            .enumerate()
            .filter(|(_, id)| game.players.get(*id).is_some_and(|p| p.away.is_none()))
            .map(|(i, _)| i)
            .take(2)
            .collect();
        let [first, second] = ready[..] else {
            return;
        };
        // The later one first, so the earlier index still points at its player.
        let second = game.lobby.remove(second).unwrap_or_default();
        let first = game.lobby.remove(first).unwrap_or_default();
        let ids = [first, second];
        game.next_match += 1;
        let n = game.next_match;
        let room = format!("match:{n}");
        let players = [0, 1].map(|i| {
            let player = game
                .players
                .get_mut(&ids[i])
                .expect("lobby ids are players");
            player.in_match = Some(n);
            Slot {
                id: ids[i].clone(),
                name: player.name.clone(),
                x: START[i].0,
                y: START[i].1,
                away: false,
                dir: (0, 0),
            }
        });
        let ticks = game.match_ticks;
        game.matches.insert(
            n,
            Match {
                room: room.clone(),
                tick: 0,
                players: players.clone(),
            },
        );
        for (slot, id) in ids.iter().enumerate() {
            // Every socket is in a room named after its id: that is how the loop addresses
            // one socket from a timer or from another socket's handler.
            cx.of("/").to(id.as_str()).join(&room);
            let start = json!({
                "match": room, "slot": slot, "tick_hz": TICK_HZ, "ticks": ticks,
                "arena": ARENA, "you": players[slot], "opponent": players[1 - slot],
            });
            cx.of("/").to(id.as_str()).emit("match_start", &start);
        }
    }
}

/// Ends match `n`: its players are told why, leave its room (which then no longer exists)
/// and are free to join the lobby again.
fn end_match(cx: &mut ServerCx<'_, Game>, n: u64, reason: &str, detail: &str) {
    let Some(m) = cx.state().matches.remove(&n) else {
        return;
    };
    for slot in &m.players {
        if let Some(p) = cx.state().players.get_mut(&slot.id) {
            p.in_match = None;
        }
    }
    let end = json!({"match": m.room, "tick": m.tick, "reason": reason, "detail": detail});
    cx.of("/").to(m.room.as_str()).emit("match_end", &end);
    cx.of("/").to(m.room.as_str()).leave(&m.room);
}

/// One simulation step of every match, then each match's state to its room.
fn tick(cx: &mut ServerCx<'_, Game>) {
    let game = cx.state();
    let mut states = Vec::with_capacity(game.matches.len());
    let mut over = Vec::new();
    for (n, m) in &mut game.matches {
        m.tick += 1;
        for p in &mut m.players {
            p.x = (p.x + p.dir.0).clamp(0, ARENA);
            p.y = (p.y + p.dir.1).clamp(0, ARENA);
        }
        states.push(State {
            room: m.room.clone(),
            tick: m.tick,
            players: m.players.clone(),
        });
        if m.tick >= game.match_ticks {
            over.push(*n);
        }
    }
    for state in &states {
        // Volatile: a player who cannot take this state right now gets the next one
        // instead of a growing backlog of stale positions.
        cx.of("/")
            .to(state.room.as_str())
            .volatile()
            .emit("state", state);
    }
    for n in over {
        end_match(cx, n, "time_up", "");
    }
}

fn join_lobby(game: &mut Game, id: &str, request: &Value) -> Value {
    if game.lobby.iter().any(|w| w == id) {
        return json!({"ok": false, "error": "already in the lobby"});
    }
    if game.players.get(id).is_some_and(|p| p.in_match.is_some()) {
        return json!({"ok": false, "error": "already in a match"});
    }
    let name: String = match request["name"].as_str() {
        Some(name) if !name.trim().is_empty() => name.trim().chars().take(24).collect(),
        _ => "player".into(),
    };
    game.players.insert(
        id.to_owned(),
        Player {
            name,
            in_match: None,
            away: None,
        },
    );
    game.lobby.push_back(id.to_owned());
    json!({"ok": true, "waiting": game.lobby.len()})
}

fn apply_input(game: &mut Game, id: &str, input: &Value) -> Value {
    let component = |key: &str| input[key].as_i64().filter(|d| (-1..=1).contains(d));
    let (Some(dx), Some(dy)) = (component("dx"), component("dy")) else {
        return json!({"accepted": false, "reason": "dx and dy must be -1, 0 or 1"});
    };
    let Some(n) = game.players.get(id).and_then(|p| p.in_match) else {
        return json!({"accepted": false, "reason": "not in a match"});
    };
    let Some(m) = game.matches.get_mut(&n) else {
        return json!({"accepted": false, "reason": "not in a match"});
    };
    let Some(slot) = m.players.iter_mut().find(|p| p.id == id) else {
        return json!({"accepted": false, "reason": "not in a match"});
    };
    slot.dir = (dx as i32, dy as i32);
    // Inputs take effect on the next simulated tick: its state is the first to show them.
    json!({"accepted": true, "tick": m.tick + 1})
}

/// A player's socket left: with a recoverable reason and recovery on, they are away and
/// have the window to come back; otherwise they are gone, and so is their match.
fn left(cx: &mut SocketCx<'_, Game>, reason: DisconnectReason) {
    let id = cx.id().to_owned();
    let window = cx.state().recovery.filter(|_| reason.is_recoverable());
    let Some(window) = window else {
        gone(cx, &id, reason);
        return;
    };
    let game = cx.state();
    let Some(n) = game.players.get(&id).map(|p| p.in_match) else {
        // Never joined the lobby: nothing to keep.
        return;
    };
    if let Some(slot) = n
        .and_then(|n| game.matches.get_mut(&n))
        .and_then(|m| m.players.iter_mut().find(|p| p.id == id))
    {
        // Stopped rather than running into a wall on its last input while nobody steers.
        slot.dir = (0, 0);
        slot.away = true;
    }
    // The same window as recovery's: past it the socket cannot come back as itself.
    let away = id.clone();
    let timer = cx.after(window, move |cx| gone(cx, &away, reason));
    if let Some(player) = cx.state().players.get_mut(&id) {
        player.away = Some(timer);
    }
}

/// Forgets player `id` (a deliberate leave, or away past the window): out of the lobby, and
/// their match, if any, ends for the other player.
fn gone(cx: &mut ServerCx<'_, Game>, id: &str, reason: DisconnectReason) {
    let game = cx.state();
    game.lobby.retain(|w| w != id);
    let Some(player) = game.players.remove(id) else {
        return;
    };
    if let Some(n) = player.in_match {
        // The socket has left its rooms already (or is away): the `match_end` reaches only
        // the player left behind, now.
        end_match(cx, n, "opponent_left", reason.as_str());
    }
}

/// A dropped socket is back (same id, its rooms restored): the player is no longer away,
/// and resumes their match or their place in the lobby.
fn back(cx: &mut SocketCx<'_, Game>) {
    let id = cx.id().to_owned();
    let game = cx.state();
    let player = game.players.get_mut(&id);
    let timer = player.as_ref().and_then(|p| p.away);
    let n = player.and_then(|p| {
        p.away = None;
        p.in_match
    });
    if let Some(timer) = timer {
        cx.cancel_timer(timer);
    }
    // A match that ended while the player was away (its `match_end` was replayed to them)
    // left its room without them: leave it now, so the ended match's room is gone.
    let current = n.map(|n| format!("match:{n}"));
    for room in cx.rooms() {
        if room.starts_with("match:") && Some(&room) != current.as_ref() {
            cx.leave(&room);
        }
    }
    let game = cx.state();
    let Some(m) = n.and_then(|n| game.matches.get_mut(&n)) else {
        // Waiting in the lobby, maybe: a pairing may have waited for this player.
        start_matches(cx);
        return;
    };
    let Some(slot) = m.players.iter().position(|p| p.id == id) else {
        return;
    };
    m.players[slot].away = false;
    let resume = json!({
        "match": m.room, "slot": slot, "tick": m.tick,
        "you": m.players[slot], "opponent": m.players[1 - slot],
    });
    cx.emit("match_resume", &resume);
}

fn main() -> std::io::Result<()> {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 3000u16;
    let mut match_seconds = 120u64;
    let mut recovery_seconds = RECOVERY_SECONDS;
    let mut client_js: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("{flag}: bad value {value:?}");
            std::process::exit(2)
        };
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value.parse().unwrap_or_else(|_| bad()),
            "--match-seconds" => match value.parse() {
                Ok(s) if s > 0 => match_seconds = s,
                _ => bad(),
            },
            // 0 turns recovery off: every drop ends the player's match at once.
            "--recovery-seconds" => {
                recovery_seconds = value.parse().unwrap_or_else(|_| bad());
            }
            "--client-js" => client_js = Some(value.into()),
            _ => {
                eprintln!(
                    "usage: lan_game [--host ADDR] [--port N] [--match-seconds S] [--recovery-seconds S] [--client-js PATH]"
                );
                std::process::exit(2)
            }
        }
    }

    let recovery = (recovery_seconds > 0).then(|| Duration::from_secs(recovery_seconds));
    let game = Game {
        match_ticks: match_seconds * TICK_HZ,
        recovery,
        ..Game::default()
    };
    let page = page::Page::new(
        include_str!("shared/lan_game.html"),
        page::Client::cdn_or_file(client_js.as_deref()),
        false,
    )?;
    let mut server = Server::bind((host.as_str(), port), Config::default(), game)?;
    server.on_http(move |request| page.respond(request));
    if let Some(window) = recovery {
        server.connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: window,
            ..RecoveryConfig::default()
        });
    }
    // Two inputs per tick is plenty for a human; a flooding client loses the excess (its
    // acks never come) instead of taking loop time from everyone else.
    server.rate_limit(RateLimit {
        per_second: 2.0 * TICK_HZ as f64,
        burst: 30.0,
        action: RateLimitAction::Drop,
    });
    server
        .of("/")
        .on("join_lobby", |cx, request: Value, ack| {
            let id = cx.id().to_owned();
            let reply = join_lobby(cx.state(), &id, &request);
            if let Some(ack) = ack {
                cx.ack(ack, &reply);
            }
            start_matches(cx);
        })
        .on("input", |cx, input: Value, ack| {
            let id = cx.id().to_owned();
            let reply = apply_input(cx.state(), &id, &input);
            if let Some(ack) = ack {
                cx.ack(ack, &reply);
            }
        })
        .on("status", |cx, (): (), ack| {
            let game = cx.state();
            let waiting: Vec<&str> = game
                .lobby
                .iter()
                .filter_map(|id| game.players.get(id).map(|p| p.name.as_str()))
                .collect();
            let matches: Vec<&str> = game.matches.values().map(|m| m.room.as_str()).collect();
            let mut status = json!({"waiting": waiting, "matches": matches});
            // The room index itself, to show that an ended match leaves no room behind.
            let mut rooms = cx.nsp_rooms("/");
            rooms.retain(|r| r.starts_with("match:"));
            rooms.sort();
            status["rooms"] = json!(rooms);
            if let Some(ack) = ack {
                cx.ack(ack, &status);
            }
        })
        .on_connect(|cx| {
            if cx.recovered() {
                back(cx);
            }
        })
        .on_disconnect(left);
    // One timer steps every match. It runs at a fixed rate (the next tick is due one
    // period after the last was due, not after it ran), so the game clock does not drift.
    server.every(Duration::from_nanos(1_000_000_000 / TICK_HZ), tick);

    // Tests read this line to find the port when started with `--port 0`.
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.run()
}
