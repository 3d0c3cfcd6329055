#!/usr/bin/env node
// The buyer's flow on seatq, from Node.js with ioredis:
//   join the line -> poll until called -> claim the pass -> hold seats with the pass -> confirm.
//
//   node example.js redis://127.0.0.1:6379 sale:demo alice           # standalone
//   node example.js --cluster redis://127.0.0.1:7000 sale:demo alice # Redis Cluster (any node)
//
// The demo event gets 100 general-admission units the first time. See README.md.

"use strict";

const Redis = require("ioredis");
const { seatq, waitForPass, SeatqError } = require("./seatq");

/** Connects to a standalone server or, with `cluster`, to the cluster `url` belongs to. */
function connect(url, { cluster = false } = {}) {
  if (!cluster) return new Redis(url);
  const u = new URL(url);
  return new Redis.Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    redisOptions: { password: u.password ? decodeURIComponent(u.password) : undefined },
  });
}

/** Runs the whole flow for `user` on `event`; returns what each step answered. */
async function buyerFlow(client, event, user, { qty = 2, log = () => {}, signal } = {}) {
  const admitted = await waitForPass(client, event, user, {
    signal,
    onStatus: (st) => {
      if (st.state === "waiting") log(`${user}: waiting, position ${st.position}, retry in ${st.retry_after_ms} ms`);
    },
  });
  log(`${user}: admitted, ticket ${admitted.ticket}, pass expires at ${new Date(admitted.expiresAtMs).toISOString()}`);
  const held = await seatq.hold(client, event, user, { qty }, { pass: admitted.pass });
  log(`${user}: holding ${held.qty} until ${new Date(Number(held.expires_at_ms)).toISOString()}, ${held.remaining} left`);
  const sold = await seatq.confirm(client, event, user, { qty });
  log(`${user}: bought ${sold.sold}, ${sold.remaining} left`);
  return { admitted, held, sold };
}

async function ensureStock(client, event, qty = 100) {
  try {
    const info = await seatq.seatInfo(client, event);
    if (Number(info.ga_total) > 0) return;
  } catch (e) {
    if (!(e instanceof SeatqError && e.code === "NO_SUCH_EVENT")) throw e;
  }
  await seatq.seatAddQty(client, event, qty);
}

async function main(argv) {
  const cluster = argv.includes("--cluster");
  const [url = "redis://127.0.0.1:6379", event = "sale:demo", user = "alice"] = argv.filter((a) => a !== "--cluster");
  const client = connect(url, { cluster });
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort(new Error("interrupted: left the line")));
  try {
    await ensureStock(client, event);
    await buyerFlow(client, event, user, { log: console.log, signal: stop.signal });
  } finally {
    client.disconnect();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}

module.exports = { connect, buyerFlow, ensureStock };
