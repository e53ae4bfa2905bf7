// The chat page's script. It talks to the server (examples/chat/main.rs) with the official
// socket.io client, the global `io` the page loads before this file. Text from users is only
// ever set with `textContent`, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

let me = null; // the signed-in name
let lastPrivateId = 0; // the newest private message this tab has
let current = null; // the key of the conversation on screen
let online = new Set();
let noticeTimer = 0;
let lastTypingSent = 0;
// Conversations by key, "room:NAME" or "dm:NAME". Messages are kept by their database id,
// so one that arrives live and again in a history reply is shown once.
const conversations = new Map();

const socket = io({
  autoConnect: false,
  // A function, so it runs again on every reconnection: the server learns the newest
  // private message this tab has and sends only what it missed.
  auth: (cb) => cb({ name: me, since: lastPrivateId }),
});
window.chat = { socket }; // for the browser console (and the browser test)

// --- Signing in -----------------------------------------------------------------------

$("name").value = localStorage.getItem("chat-name") ?? "";
$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  me = $("name").value.trim();
  localStorage.setItem("chat-name", me);
  $("signin-error").hidden = true;
  socket.connect();
});

socket.on("connect", () => {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me").textContent = me;
  setStatus("connected");
  // A reconnection is a new socket, in no room yet: join them again, asking each only
  // for what this tab missed. The first time, join #general.
  const rooms = [...conversations.values()].filter((c) => c.kind === "room");
  if (rooms.length === 0) join("general", false);
  for (const c of rooms) join(c.name, false);
});

socket.on("connect_error", (err) => {
  // Network trouble: the client retries by itself.
  if (socket.active) return setStatus("reconnecting…");
  // Refused by the server's sign-in middleware; the message is the reason.
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = err.message;
  $("signin-error").hidden = false;
});

socket.on("disconnect", () => setStatus(socket.active ? "reconnecting…" : "offline"));

function setStatus(text) {
  $("status").textContent = text;
  $("status").classList.toggle("connected", text === "connected");
}

// --- Conversations ----------------------------------------------------------------------

function conversation(key) {
  let c = conversations.get(key);
  if (!c) {
    const split = key.indexOf(":");
    c = {
      key,
      kind: key.slice(0, split),
      name: key.slice(split + 1),
      messages: new Map(),
      unread: 0,
      typing: new Map(), // name -> until (ms)
    };
    conversations.set(key, c);
  }
  return c;
}

const newestId = (c) => Math.max(0, ...c.messages.keys());

function add(c, msg) {
  if (c.messages.has(msg.id)) return;
  c.messages.set(msg.id, msg);
  c.typing.delete(msg.from);
  if (c.key !== current && msg.from !== me) c.unread++;
}

function addPrivate(msg) {
  const other = msg.from === me ? msg.to : msg.from;
  add(conversation(`dm:${other}`), msg);
  lastPrivateId = Math.max(lastPrivateId, msg.id);
}

function join(room, fromForm) {
  const known = conversations.get(`room:${room}`);
  socket.emit("join", { room, since: known ? newestId(known) : 0 }, (answer) => {
    if (answer.error) {
      $("join-error").textContent = answer.error;
      $("join-error").hidden = false;
      return;
    }
    $("join-error").hidden = true;
    const c = conversation(`room:${answer.room}`);
    if (fromForm || current === null) show(c.key);
    else render();
  });
}

function show(key) {
  current = key;
  const c = conversations.get(key);
  if (c) c.unread = 0;
  render();
}

// --- What the server sends ----------------------------------------------------------------

socket.on("history", ({ room, messages }) => {
  const c = conversations.get(`room:${room}`);
  if (c) messages.forEach((m) => add(c, m));
  render();
});
socket.on("message", (m) => {
  const c = conversations.get(`room:${m.room}`);
  if (c) add(c, m);
  render();
});
socket.on("private_history", (messages) => {
  messages.forEach(addPrivate);
  render();
});
socket.on("private", (m) => {
  addPrivate(m);
  render();
});
socket.on("online", (names) => {
  online = new Set(names);
  render();
});
socket.on("presence", ({ user, online: on }) => {
  if (on) online.add(user);
  else online.delete(user);
  render();
});
socket.on("typing", ({ from, room }) => {
  const c = conversations.get(room ? `room:${room}` : `dm:${from}`);
  if (!c) return;
  c.typing.set(from, Date.now() + 3000);
  renderTyping();
  setTimeout(renderTyping, 3100);
});
socket.on("rate_limited", ({ refused, retry_ms }) => {
  const wait = Math.max(1, Math.ceil(retry_ms / 1000));
  notice(`Slow down: that message was not sent (${refused} refused so far). Try again in ${wait} s.`);
});
socket.on("notice", notice);

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => ($("notice").hidden = true), 8000);
}

// --- What the user does ---------------------------------------------------------------------

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const c = conversations.get(current);
  const text = $("text").value.trim();
  if (!c || !text) return;
  // Shown when the server sends it back with its id, like everyone else's.
  if (c.kind === "room") socket.emit("message", { room: c.name, text });
  else socket.emit("private", { to: c.name, text });
  $("text").value = "";
  lastTypingSent = 0; // the next key press starts a new typing hint at once
});

$("text").addEventListener("input", () => {
  const c = conversations.get(current);
  if (!c || Date.now() - lastTypingSent < 1500) return;
  lastTypingSent = Date.now();
  // Volatile: not buffered while disconnected, a late typing hint is useless.
  socket.volatile.emit("typing", c.kind === "room" ? { room: c.name } : { to: c.name });
});

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  join($("join-name").value.trim().toLowerCase(), true);
  $("join-name").value = "";
});

$("dm-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("dm-name").value.trim();
  if (name) show(conversation(`dm:${name}`).key);
  $("dm-name").value = "";
});

$("leave").addEventListener("click", () => {
  const c = conversations.get(current);
  if (!c || c.kind !== "room") return;
  socket.emit("leave", { room: c.name });
  conversations.delete(c.key);
  current = null;
  const next = conversations.keys().next();
  if (next.done) render();
  else show(next.value);
});

// --- Drawing ------------------------------------------------------------------------------

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render() {
  renderList($("rooms"), "room", (c) => `#${c.name}`);
  renderList($("dms"), "dm", (c) => c.name);
  $("online").replaceChildren(
    ...[...online].sort().map((name) => {
      const li = el("li", "", name === me ? `${name} (you)` : name);
      li.dataset.user = name;
      return li;
    }),
  );
  const c = conversations.get(current);
  $("title").textContent = c ? (c.kind === "room" ? `#${c.name}` : c.name) : "";
  $("leave").hidden = !c || c.kind !== "room";
  const list = $("messages");
  const messages = c ? [...c.messages.values()].sort((a, b) => a.id - b.id) : [];
  list.replaceChildren(...messages.map(messageItem));
  list.scrollTop = list.scrollHeight;
  renderTyping();
}

function renderList(ul, kind, label) {
  const items = [...conversations.values()]
    .filter((c) => c.kind === kind)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((c) => {
      const li = el("li", c.key === current ? "current" : "");
      li.dataset.key = c.key;
      li.append(el("span", "", label(c)));
      if (c.unread) li.append(el("span", "badge", String(c.unread)));
      li.addEventListener("click", () => show(c.key));
      return li;
    });
  ul.replaceChildren(...items);
}

function messageItem(m) {
  const li = el("li", m.from === me ? "mine" : "");
  const meta = el("div", "meta");
  meta.append(el("span", "from", m.from));
  const time = new Date(m.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(el("time", "", time));
  li.append(meta, el("p", "text", m.text));
  return li;
}

function renderTyping() {
  const c = conversations.get(current);
  const now = Date.now();
  const names = c ? [...c.typing].filter(([, until]) => until > now).map(([name]) => name) : [];
  $("typing").textContent =
    names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
}
