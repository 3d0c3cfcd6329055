// seatq from Node.js with ioredis: the module's commands, routed by their event key on a Redis
// Cluster, their replies as plain objects, their errors as SeatqError, and the waiting loop.
//
// Why a Command subclass: ioredis finds a command's keys in its built-in command table
// (@ioredis/commands). QUEUE.* and SEAT.* are not in it, so `cluster.call("QUEUE.ENQUEUE", ...)`
// has no slot, goes to a random primary, and comes back MOVED from the others (two times in
// three with three primaries) before it reaches the right node. seatq's first argument is
// always the event key: SeatqCommand says so, and ioredis computes the slot from it and sends
// the command straight to the node serving the event. (On a standalone server it changes
// nothing.) ioredis' keyPrefix option is not applied to these commands.

"use strict";

const { Command } = require("ioredis");

class SeatqCommand extends Command {
  /** The event key, seatq's first argument: what ioredis' cluster routing hashes. */
  getKeys() {
    return this.args.length > 0 ? [this.args[0]] : [];
  }
}

/** A seatq error reply: `code` (NOT_READY, DUPLICATE, ...) and the fields of its message. */
class SeatqError extends Error {
  constructor(message) {
    super(message);
    this.name = "SeatqError";
    const [code, ...rest] = message.split(" ");
    this.code = code;
    this.detail = rest.join(" ");
    if (code === "NOT_READY") {
      const f = rest;
      for (let i = 0; i + 1 < f.length; i += 2) this[camel(f[i])] = Number(f[i + 1]);
    } else if (code === "DUPLICATE") {
      this.ticket = rest.length === 1 ? rest[0] : null; // null: another user's key
    } else if (code === "TICKET_ENDED") {
      this.state = this.detail;
    } else if (code === "SOLD_OUT") {
      const m = /^(\d+) left/.exec(this.detail);
      this.left = m ? Number(m[1]) : null;
    }
  }
}

function camel(s) {
  return s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/** RESP2 field/value arrays (what ioredis 5 returns) as objects; numbers stay numbers. */
function record(reply) {
  if (!Array.isArray(reply)) return reply;
  const out = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i]] = reply[i + 1];
  return out;
}

/** Sends one seatq command: `call(client, "QUEUE.STATUS", event, ticket)`. */
async function call(client, name, ...args) {
  try {
    return await client.sendCommand(new SeatqCommand(name, args, { replyEncoding: "utf8" }));
  } catch (err) {
    if (err && err.name === "ReplyError" && /^[A-Z_]+( |$)/.test(err.message)) {
      const e = new SeatqError(err.message);
      e.cause = err;
      throw e;
    }
    throw err;
  }
}

const target = (t) => (t && t.user !== undefined ? ["USER", t.user] : [t]);

const seatq = {
  enqueue: async (c, event, user, { idempotency, data } = {}) => {
    const args = [event, user];
    if (idempotency !== undefined) args.push("IDEMPOTENCY", idempotency);
    if (data) args.push("DATA", ...Object.entries(data).flat());
    return record(await call(c, "QUEUE.ENQUEUE", ...args));
  },
  /** `ticket` is a ticket string or `{ user }`. */
  status: async (c, event, ticket) => record(await call(c, "QUEUE.STATUS", event, ...target(ticket))),
  admit: async (c, event, ticket) => record(await call(c, "QUEUE.ADMIT", event, ...target(ticket))),
  leave: async (c, event, ticket) => (await call(c, "QUEUE.LEAVE", event, ...target(ticket))) === 1,
  verify: async (c, event, pass) => record(await call(c, "QUEUE.VERIFY", event, pass)),
  configSet: async (c, event, settings) =>
    call(c, "QUEUE.CONFIG", event, "SET", ...Object.entries(settings).flat()),
  queueInfo: async (c, event) => record(await call(c, "QUEUE.INFO", event)),
  seatAdd: async (c, event, ...seats) => call(c, "SEAT.ADD", event, ...seats),
  seatAddQty: async (c, event, qty) => call(c, "SEAT.ADD", event, "QTY", qty),
  /** `units`: an array of seats or `{ qty }`. */
  hold: async (c, event, user, units, { ttl, pass } = {}) => {
    const args = [event, user, ...(Array.isArray(units) ? units : ["QTY", units.qty])];
    if (ttl !== undefined) args.push("TTL", ttl);
    if (pass !== undefined) args.push("PASS", pass);
    return record(await call(c, "SEAT.HOLD", ...args));
  },
  release: async (c, event, user, units) =>
    call(c, "SEAT.RELEASE", event, user, ...(Array.isArray(units) ? units : ["QTY", units.qty])),
  confirm: async (c, event, user, units) =>
    record(await call(c, "SEAT.CONFIRM", event, user, ...(Array.isArray(units) ? units : ["QTY", units.qty]))),
  seatInfo: async (c, event) => record(await call(c, "SEAT.INFO", event)),
};

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      if (signal) signal.removeEventListener("abort", abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    if (signal) signal.addEventListener("abort", abort, { once: true });
  });

/**
 * The waiting loop: join; a join the server called at once (its reply says `admitted`) is
 * claimed right away; otherwise poll QUEUE.STATUS every `retry_after_ms` (which keeps the
 * ticket's heartbeat alive and never misses the claim window) and claim with QUEUE.ADMIT once
 * `admitted`. Returns `{ ticket, pass, expiresAtMs }`. Aborting `signal` leaves the line and
 * rejects with the signal's reason. `onStatus` sees every STATUS reply.
 */
async function waitForPass(c, event, user, { signal, onStatus, idempotency } = {}) {
  let ticket;
  let admitted = false;
  try {
    const joined = await seatq.enqueue(c, event, user, { idempotency });
    ticket = joined.ticket;
    admitted = joined.state === "admitted";
  } catch (e) {
    if (!(e instanceof SeatqError && e.code === "DUPLICATE" && e.ticket)) throw e;
    ticket = e.ticket;
  }
  try {
    if (admitted) {
      try {
        const adm = await seatq.admit(c, event, ticket);
        return { ticket, pass: adm.pass, expiresAtMs: Number(adm.expires_at_ms) };
      } catch (e) {
        if (!(e instanceof SeatqError && e.code === "NOT_READY")) throw e; // poll as below
      }
    }
    for (;;) {
      if (signal && signal.aborted) throw signal.reason;
      let delay;
      const st = await seatq.status(c, event, ticket);
      if (onStatus) onStatus(st);
      if (st.state === "admitted") {
        try {
          const adm = await seatq.admit(c, event, ticket);
          return { ticket, pass: adm.pass, expiresAtMs: Number(adm.expires_at_ms) };
        } catch (e) {
          if (!(e instanceof SeatqError && e.code === "NOT_READY")) throw e;
          delay = e.retryAfterMs;
        }
      } else if (st.state === "waiting") {
        delay = Number(st.retry_after_ms);
      } else {
        throw new SeatqError(`TICKET_ENDED ${st.state}`);
      }
      await sleep(delay, signal);
    }
  } catch (e) {
    if (signal && signal.aborted) await seatq.leave(c, event, ticket).catch(() => {});
    throw e;
  }
}

module.exports = { SeatqCommand, SeatqError, call, record, seatq, waitForPass };
