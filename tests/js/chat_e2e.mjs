// Drives the chat example (`examples/chat/`) in headless Chromium through `playwright-core`:
// real pages, the real browser build of socket.io-client, clicks and key presses.
//
// Usage: node chat_e2e.mjs <mode> <url> [args...]
//
//   main <screenshot.png>   sign-in refusals, offline delivery, one user in two tabs, a tab
//                           that reconnects, rooms (rules, limit, history on join), typing,
//                           the rate limit, presence across tabs; saves a screenshot of a
//                           chat there, and one of a refused sign-in next to it (`-signin`)
//   persist-write           bob writes to #general and to dave (never signed in) ...
//   persist-read            ... and after a server restart on the same database, dave gets
//                           both (run against the restarted server)
//   offline [FLAG]          the page without its client script says so, naming FLAG
//                           (default --client-js)
//
// The browser is Chromium at $CHROMIUM (default /usr/bin/chromium). Each launch gets a new,
// empty profile (playwright makes a temporary user-data-dir and removes it on close), and
// each user gets a browser context of their own (separate storage, like separate browsers).
//
// On success prints one JSON summary line (`{"ok":true,...}`) to stdout and exits 0. On any
// failure (including the overall timeout) prints the reason to stderr and exits 1.

import { chromium } from "playwright-core";

const [mode, url, ...rest] = process.argv.slice(2);
const started = Date.now();
const OVERALL_TIMEOUT_MS = 90_000;
// How long one awaited step (a message showing up, a sign-in) may take.
const STEP_TIMEOUT_MS = 10_000;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
let progress = "starting";
let finished = false;
let browser = null;
const consoleErrors = [];

function fail(reason) {
  if (finished) return;
  finished = true;
  const errors = consoleErrors.length ? `\nbrowser console errors:\n  ${consoleErrors.join("\n  ")}` : "";
  process.stderr.write(
    `chat_e2e ${mode} FAILED after ${Date.now() - started} ms while ${progress}:\n${reason}${errors}\n`,
  );
  // Do not wait for the browser: the Rust side kills anything left.
  browser?.close().catch(() => {});
  setTimeout(() => process.exit(1), 200);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`${e?.stack ?? e}`));
setTimeout(() => fail(`overall timeout (${OVERALL_TIMEOUT_MS} ms)`), OVERALL_TIMEOUT_MS).unref();

if (!url || !/^http:\/\//.test(url)) fail("usage: node chat_e2e.mjs <mode> <url> [args...]");

async function done(summary) {
  await browser?.close();
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify({ ok: true, mode, ms: Date.now() - started, ...summary }) + "\n");
  process.exit(0);
}

function expect(what, cond, detail = "") {
  if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ""}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// The browser and the page

async function launch() {
  progress = `launching ${CHROMIUM}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return browser;
}

/** A user's browser: a context of its own (its own storage), like a separate browser. */
async function userContext() {
  return browser.newContext({ viewport: { width: 1100, height: 680 } });
}

/** A tab on the chat page. Page errors and requests leaving the server fail the test. */
async function openTab(context, who) {
  progress = `opening a tab for ${who}`;
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (e) => fail(`${who}: error in the page: ${e?.stack ?? e}`));
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${who}: ${m.text()}`);
  });
  // The console says only "Failed to load resource"; name the request.
  page.on("response", (r) => {
    if (r.status() >= 400) consoleErrors.push(`${who}: HTTP ${r.status()} for ${r.url()}`);
  });
  // The test serves the npm copy of the client: the page must not reach the CDN (or
  // anything else) when the server was given --client-js.
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(url) && !u.startsWith("data:")) {
      fail(`${who}: the page requested ${u}, outside the server`);
    }
  });
  await page.goto(url);
  page.who = who;
  return page;
}

async function submitName(page, name) {
  await page.fill("#name", name);
  await page.click("#signin-form button");
}

async function signIn(page, name) {
  progress = `signing ${page.who} in as ${name}`;
  await submitName(page, name);
  await page.locator("#status.connected").waitFor();
  // Every tab joins #general first.
  await page.locator('#rooms li[data-key="room:general"]').waitFor();
}

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function openConversation(page, key) {
  await page.locator(`li[data-key="${key}"]`).click();
  await page.locator(`li.current[data-key="${key}"]`).waitFor();
}

/** Opens a direct conversation through the "Write" form. */
async function writeTo(page, name) {
  await page.fill("#dm-name", name);
  await page.press("#dm-name", "Enter");
  await page.locator(`li.current[data-key="dm:${name}"]`).waitFor();
}

const messageTexts = (page) => page.locator("#messages .text").allTextContents();

/** Waits until `text` is shown in the open conversation, and checks it is shown once. */
async function sees(page, text) {
  progress = `waiting for ${page.who} to see ${JSON.stringify(text)}`;
  await page.locator("#messages .text", { hasText: text }).first().waitFor();
  const count = (await messageTexts(page)).filter((t) => t === text).length;
  expect(`${page.who} shows ${JSON.stringify(text)} once`, count === 1, `shown ${count} times`);
}

async function doesNotSee(page, text) {
  const texts = await messageTexts(page);
  expect(`${page.who} does not show ${JSON.stringify(text)} yet`, !texts.includes(text), JSON.stringify(texts));
}

async function joinRoom(page, room) {
  await page.fill("#join-name", room);
  await page.press("#join-name", "Enter");
}

// ---------------------------------------------------------------------------
// Modes

async function main([screenshot]) {
  expect("a screenshot path", screenshot);
  await launch();
  const [bobs, alices, carols] = [await userContext(), await userContext(), await userContext()];
  const bob = await openTab(bobs, "bob");

  // Refused sign-ins: the middleware's reason is shown on the page.
  const refusals = {};
  for (const [name, reason] of [
    ["", "Please enter a name."],
    ["bad name!", "A name may only use letters, digits, - and _."],
    ["x".repeat(21), "That name is too long (20 characters at most)."],
  ]) {
    progress = `signing in as ${JSON.stringify(name)}, which is refused`;
    await submitName(bob, name);
    await bob.locator("#signin-error", { hasText: reason }).waitFor();
    expect("the chat stays hidden after a refusal", await bob.locator("#app").isHidden());
    refusals[name || "(empty)"] = await bob.textContent("#signin-error");
  }
  const signinScreenshot = screenshot.replace(/\.png$/, "") + "-signin.png";
  await bob.screenshot({ path: signinScreenshot });
  await signIn(bob, "bob");

  // A private message to someone offline waits in the database ...
  const offline = "Hi alice, this waited for you";
  await writeTo(bob, "alice");
  await send(bob, offline);
  await sees(bob, offline); // the server stored it and sent it back to bob's tabs
  // ... and is shown when she signs in.
  const alice1 = await openTab(alices, "alice tab 1");
  await signIn(alice1, "alice");
  progress = "waiting for alice's unread badge from bob";
  await alice1.locator('#dms li[data-key="dm:bob"] .badge').waitFor();
  await openConversation(alice1, "dm:bob");
  await sees(alice1, offline);

  progress = "waiting for bob to see alice online";
  await bob.locator('#online li[data-user="alice"]').waitFor();

  // One user, two tabs: a private message reaches both (through the room user:alice).
  const alice2 = await openTab(alices, "alice tab 2");
  await signIn(alice2, "alice");
  await openConversation(alice2, "dm:bob");
  await sees(alice2, offline);
  const both = "One message, both of your tabs";
  await send(bob, both);
  await sees(alice1, both);
  await sees(alice2, both);
  // Alice's reply shows in her other tab too, and at bob's.
  const reply = "Got it in both tabs!";
  await send(alice1, reply);
  await sees(alice2, reply);
  await sees(bob, reply);

  // A tab that was disconnected gets what it missed when it reconnects.
  progress = "disconnecting alice tab 2";
  await alice2.evaluate(() => window.chat.socket.disconnect());
  await alice2.locator("#status", { hasText: "offline" }).waitFor();
  const missed = "Sent while tab 2 was away";
  await send(bob, missed);
  await sees(alice1, missed);
  await sleep(300);
  await doesNotSee(alice2, missed);
  progress = "reconnecting alice tab 2";
  await alice2.evaluate(() => window.chat.socket.connect());
  await alice2.locator("#status.connected").waitFor();
  await sees(alice2, missed);

  // A room: messages to everyone in it.
  await openConversation(alice1, "room:general");
  await openConversation(bob, "room:general");
  const hello = "Hello #general";
  await send(bob, hello);
  await sees(alice1, hello);
  const hey = "Hey bob, welcome to sioloop chat";
  await send(alice1, hey);
  await sees(bob, hey);

  // Typing hints (volatile) reach the others in the room, not the typist's own tabs.
  progress = "typing in alice tab 1";
  await alice1.locator("#text").pressSequentially("I am typ", { delay: 20 });
  await bob.locator("#typing", { hasText: "alice is typing" }).waitFor();
  await openConversation(alice2, "room:general");
  await sleep(200);
  expect("alice's own tab shows no typing hint for her", (await alice2.textContent("#typing")) === "");
  await alice1.fill("#text", "");

  // Room names have rules, and there is a limit per tab.
  progress = "joining a room with a bad name";
  await joinRoom(bob, "Bad Room!");
  await bob.locator("#join-error", { hasText: "A room name is 1 to 24 lowercase letters" }).waitFor();
  for (let i = 1; i <= 9; i++) {
    progress = `joining room r${i}`;
    await joinRoom(bob, `r${i}`);
    await bob.locator(`#rooms li[data-key="room:r${i}"]`).waitFor();
  }
  progress = "joining an eleventh room";
  await joinRoom(bob, "one-too-many");
  await bob.locator("#join-error", { hasText: "10 rooms at most" }).waitFor();
  const bobRooms = await bob.locator("#rooms li").count();
  expect("bob is in 10 rooms", bobRooms === 10, `${bobRooms}`);
  await openConversation(bob, "room:general");

  // Someone who joins later gets the room's history.
  const carol = await openTab(carols, "carol");
  await signIn(carol, "carol");
  await openConversation(carol, "room:general");
  await sees(carol, hello);
  await sees(carol, hey);
  const historyOnJoin = (await messageTexts(carol)).length;
  await alice1.locator('#online li[data-user="carol"]').waitFor();

  progress = "taking the screenshot";
  await alice1.screenshot({ path: screenshot });

  // The rate limit: a burst of messages, the ones past the limit refused and bob told.
  progress = "sending a burst of messages";
  const burst = 12;
  for (let i = 1; i <= burst; i++) await send(bob, `burst ${i}`);
  await bob.locator("#notice", { hasText: "Slow down" }).waitFor();
  // Every message is either delivered or refused (and counted in the notice).
  let delivered = 0;
  let refused = 0;
  for (const deadline = Date.now() + STEP_TIMEOUT_MS; Date.now() < deadline; await sleep(100)) {
    delivered = (await messageTexts(carol)).filter((t) => t.startsWith("burst ")).length;
    refused = Number((await bob.textContent("#notice")).match(/\((\d+) refused/)?.[1] ?? 0);
    if (delivered + refused === burst) break;
  }
  const counts = `${delivered} delivered, ${refused} refused of ${burst}`;
  expect("every message of the burst is delivered or refused", delivered + refused === burst, counts);
  expect("the limit cuts the burst", refused > 0 && delivered > 0, counts);

  // Presence across tabs: alice is online while either of her tabs is.
  progress = "closing alice tab 2";
  await alice2.close();
  await sleep(500);
  expect("alice is still online with one tab", await bob.locator('#online li[data-user="alice"]').isVisible());
  progress = "closing alice tab 1";
  await alice1.close();
  await bob.locator('#online li[data-user="alice"]').waitFor({ state: "detached" });

  expect("no errors in the browser console", consoleErrors.length === 0, consoleErrors.join("; "));
  const screenshots = [screenshot, signinScreenshot];
  await done({ refusals, historyOnJoin, rateLimit: { burst, delivered, refused }, screenshots });
}

const KEPT_ROOM = "Kept across a restart";
const KEPT_PRIVATE = "Waiting for dave across a restart";

async function persistWrite() {
  await launch();
  const bob = await openTab(await userContext(), "bob");
  await signIn(bob, "bob");
  await openConversation(bob, "room:general");
  await send(bob, KEPT_ROOM);
  await sees(bob, KEPT_ROOM);
  await writeTo(bob, "dave");
  await send(bob, KEPT_PRIVATE);
  await sees(bob, KEPT_PRIVATE);
  await done({});
}

async function persistRead() {
  await launch();
  const dave = await openTab(await userContext(), "dave");
  await signIn(dave, "dave");
  await openConversation(dave, "room:general");
  await sees(dave, KEPT_ROOM);
  await dave.locator('#dms li[data-key="dm:bob"] .badge').waitFor();
  await openConversation(dave, "dm:bob");
  await sees(dave, KEPT_PRIVATE);
  await done({});
}

/**
 * Without --client-js and without internet (the CDN request fails), or with a --client-dir
 * that has no bundle: the page says why, naming the flag given as the argument (default
 * --client-js).
 */
async function offline([flag = "--client-js"]) {
  await launch();
  const page = await (await userContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  // The machine has no internet; make it certain, and quick.
  await page.route("https://cdn.socket.io/**", (route) => route.abort());
  progress = "opening the page with no client script";
  await page.goto(url);
  const notice = await page.locator("#no-client").textContent();
  expect(`the notice names ${flag}`, notice.includes(flag), notice);
  await done({ notice });
}

/** The lan_game example's page: two players join the lobby and are matched. */
async function lanPage() {
  await launch();
  const players = [];
  for (const name of ["ann", "bob"]) {
    const page = await openTab(await userContext(), name);
    await page.locator("#status", { hasText: "Connected" }).waitFor();
    progress = `${name} joins the lobby`;
    await page.fill("#name", name);
    await page.click("#join button");
    players.push(page);
  }
  for (const page of players) {
    progress = `waiting for ${page.who}'s match`;
    await page
      .locator("#status", { hasText: "against" })
      .waitFor()
      .catch(async (e) => {
        const seen = await Promise.all(players.map(async (p) => `${p.who}: ${await p.textContent("#status")}`));
        throw new Error(`${e.message}\nstatus lines: ${seen.join(" | ")}`);
      });
  }
  expect("no errors in the browser console", consoleErrors.length === 0, consoleErrors.join("; "));
  await done({ status: await players[0].textContent("#status") });
}

/** The dashboard example's page: readings arrive, a viewer's notice is refused. */
async function dashboardPage() {
  await launch();
  const page = await openTab(await userContext(), "viewer");
  await page.locator("#status", { hasText: "Connected as viewer" }).waitFor();
  progress = "waiting for readings";
  await page.locator("#sensors tr").first().waitFor();
  await page.fill("#text", "hello");
  await page.click("#notice button");
  await page.locator("#notice-result", { hasText: "refused: forbidden" }).waitFor();
  expect("no errors in the browser console", consoleErrors.length === 0, consoleErrors.join("; "));
  await done({ sensors: await page.locator("#sensors tr").count() });
}

const modes = {
  main,
  "persist-write": persistWrite,
  "persist-read": persistRead,
  offline,
  "lan-page": lanPage,
  "dashboard-page": dashboardPage,
};
if (!modes[mode]) fail(`unknown mode ${JSON.stringify(mode)}`);
else modes[mode](rest).catch((e) => fail(e?.stack ?? e));
