"use strict";
// The buyer's flow against a standalone server: join, poll, claim, hold with the pass, confirm;
// the waiting loop honours retry_after_ms and leaves the line when aborted.

const test = require("node:test");
const assert = require("node:assert/strict");
const { Redis, url, eventKey, eventually } = require("./helpers");
const { seatq, waitForPass, call, SeatqError } = require("../seatq");
const { buyerFlow, ensureStock } = require("../example");

test("join, poll, claim, hold with the pass, confirm", async () => {
  const r = new Redis(url);
  const ev = eventKey("flow");
  try {
    await seatq.configSet(r, ev, { RATE: 5, BURST: 1 });
    await ensureStock(r, ev, 10);
    const lines = [];
    const results = await Promise.all(
      ["ann", "bo", "cy"].map((u) => buyerFlow(r, ev, u, { qty: 2, log: (l) => lines.push(l) })),
    );
    for (const { admitted, held, sold } of results) {
      assert.match(admitted.pass, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal(Number(held.qty), 2);
      assert.equal(Number(sold.sold), 2);
    }
    const info = await seatq.seatInfo(r, ev);
    assert.equal(Number(info.sold), 6);
    assert.equal(Number(info.available), 4);
    assert.ok(lines.some((l) => l.includes("waiting, position")), "someone waited (RATE 5/s, BURST 1)");
    assert.equal(Number((await seatq.queueInfo(r, ev)).claimed_total), 3);
  } finally {
    r.disconnect();
  }
});

test("a join the server calls at once is claimed without polling", async () => {
  const r = new Redis(url);
  const ev = eventKey("atonce");
  try {
    const polls = [];
    const admitted = await waitForPass(r, ev, "first", { onStatus: (s) => polls.push(s) });
    assert.match(admitted.pass, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(admitted.expiresAtMs % 1000, 0, "sessions end on whole seconds");
    assert.deepEqual(polls, [], "the join answered admitted: no STATUS poll was needed");
    assert.equal(Number((await seatq.status(r, ev, admitted.ticket)).claimed), 1);
  } finally {
    r.disconnect();
  }
});

test("errors carry their code and fields", async () => {
  const r = new Redis(url);
  const ev = eventKey("errors");
  try {
    await seatq.configSet(r, ev, { CAPACITY: 1 });
    const first = await seatq.enqueue(r, ev, "holder");
    assert.equal(first.state, "admitted"); // called in its own join: CAPACITY had room
    assert.equal(Number(first.position), 0);
    await seatq.admit(r, ev, first.ticket);
    const second = await seatq.enqueue(r, ev, "next", { idempotency: "k1" });
    assert.equal(second.state, "waiting");
    await assert.rejects(seatq.admit(r, ev, { user: "next" }), (e) => {
      assert.ok(e instanceof SeatqError);
      assert.equal(e.code, "NOT_READY");
      assert.equal(e.position, 1);
      // CAPACITY is full until the holder's session ends (its pass, 15 min away): ask again
      // at half of CLAIM-TTL.
      assert.equal(e.retryAfterMs, 15000);
      return true;
    });
    await assert.rejects(call(r, "QUEUE.RENEW", ev, "USER", "next"), (e) => e.code === "NOT_READY" && e.position === 1);
    await assert.rejects(seatq.enqueue(r, ev, "next", { idempotency: "k1" }), (e) => e.code === "DUPLICATE" && e.ticket === second.ticket);
    await assert.rejects(seatq.enqueue(r, ev, "other", { idempotency: "k1" }), (e) => e.code === "DUPLICATE" && e.ticket === null);
    await seatq.seatAddQty(r, ev, 1);
    await assert.rejects(seatq.hold(r, ev, "holder", { qty: 1 }), (e) => e.code === "PASS_REQUIRED");
    // A missing event reads as an empty one.
    await assert.rejects(seatq.status(r, `${ev}:none`, { user: "holder" }), (e) => e.code === "NO_SUCH_TICKET" && e.detail === "user holder");
    assert.equal((await seatq.verify(r, `${ev}:none`, "a.b.c")).state, "invalid");
    // The pre-queue's order is secret until OPENS-AT.
    const pre = eventKey("prequeue");
    await seatq.configSet(r, pre, { "OPENS-AT": Date.now() + 3600000 });
    await seatq.enqueue(r, pre, "early");
    await assert.rejects(call(r, "QUEUE.RANGE", pre, 0, 10), (e) => e.code === "NOT_OPEN");
    assert.equal((await seatq.queueInfo(r, pre)).head_serial, null);
  } finally {
    r.disconnect();
  }
});

test("aborting the wait leaves the line", async () => {
  const r = new Redis(url);
  const ev = eventKey("abort");
  try {
    await seatq.configSet(r, ev, { CAPACITY: 1 });
    const first = await seatq.enqueue(r, ev, "holder");
    await eventually(async () => (await seatq.status(r, ev, first.ticket)).state === "admitted");
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error("user closed the tab")), 300);
    const polls = [];
    await assert.rejects(waitForPass(r, ev, "quitter", { signal: stop.signal, onStatus: (s) => polls.push(s) }), /closed the tab/);
    assert.ok(polls.length >= 1 && polls.every((s) => s.state === "waiting"));
    assert.equal(Number((await seatq.queueInfo(r, ev)).waiting), 0);
    assert.equal(Number((await seatq.queueInfo(r, ev)).left_total), 1);
  } finally {
    r.disconnect();
  }
});
