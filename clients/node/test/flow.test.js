"use strict";
// The buyer's flow against a standalone server: join, poll, claim, hold with the pass, confirm;
// the waiting loop honours retry_after_ms and leaves the line when aborted.

const test = require("node:test");
const assert = require("node:assert/strict");
const { Redis, url, eventKey, eventually } = require("./helpers");
const { seatq, waitForPass, SeatqError } = require("../seatq");
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

test("errors carry their code and fields", async () => {
  const r = new Redis(url);
  const ev = eventKey("errors");
  try {
    await seatq.configSet(r, ev, { CAPACITY: 1 });
    const first = await seatq.enqueue(r, ev, "holder");
    await eventually(async () => (await seatq.status(r, ev, first.ticket)).state === "admitted");
    await seatq.admit(r, ev, first.ticket);
    const second = await seatq.enqueue(r, ev, "next", { idempotency: "k1" });
    await assert.rejects(seatq.admit(r, ev, { user: "next" }), (e) => {
      assert.ok(e instanceof SeatqError);
      assert.equal(e.code, "NOT_READY");
      assert.equal(e.position, 1);
      assert.ok(e.retryAfterMs > 0);
      return true;
    });
    await assert.rejects(seatq.enqueue(r, ev, "next", { idempotency: "k1" }), (e) => e.code === "DUPLICATE" && e.ticket === second.ticket);
    await assert.rejects(seatq.enqueue(r, ev, "other", { idempotency: "k1" }), (e) => e.code === "DUPLICATE" && e.ticket === null);
    await seatq.seatAddQty(r, ev, 1);
    await assert.rejects(seatq.hold(r, ev, "holder", { qty: 1 }), (e) => e.code === "PASS_REQUIRED");
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
