"use strict";
// Redis Cluster: seatq's commands go straight to the node serving their event key.
//
// Each node's INFO errorstats counts the MOVED replies it sent. With SeatqCommand (seatq.js) the
// whole flow on 24 events spread over 3 primaries makes none, and every node ran exactly the
// joins of its own keys. The same commands sent with ioredis' generic `cluster.call()` have no
// slot (ioredis knows only its built-in table of key positions) and are MOVED from the
// wrong nodes first: the check below shows it, so that zero means something.

const test = require("node:test");
const assert = require("node:assert/strict");
const { Redis, clusterUrls, eventKey } = require("./helpers");
const { seatq } = require("../seatq");
const { buyerFlow, ensureStock, connect } = require("../example");

const skip = clusterUrls.length === 0 ? "SEATQ_TEST_CLUSTER_URLS is not set" : false;

function nodes() {
  return clusterUrls.map((u) => new Redis(u));
}

async function resetStats(ns) {
  await Promise.all(ns.map((n) => n.config("RESETSTAT")));
}

function statField(info, line, field) {
  const m = new RegExp(`^${line}:.*\\b${field}=(\\d+)`, "m").exec(info);
  return m ? Number(m[1]) : 0;
}

async function moved(ns) {
  const infos = await Promise.all(ns.map((n) => n.info("errorstats")));
  return infos.reduce((sum, info) => sum + statField(info, "errorstat_MOVED", "count"), 0);
}

/** Index (in `ns`) of the node serving each key. */
async function owners(ns, keys) {
  const slots = await ns[0].cluster("SLOTS");
  const ports = ns.map((n) => n.options.port);
  const out = {};
  for (const key of keys) {
    const slot = await ns[0].cluster("KEYSLOT", key);
    const range = slots.find(([start, end]) => slot >= start && slot <= end);
    out[key] = ports.indexOf(Number(range[2][1]));
  }
  return out;
}

test("the flow on 24 events routes every command to its key's node: no MOVED", { skip }, async () => {
  const ns = nodes();
  const cluster = connect(clusterUrls[0], { cluster: true });
  try {
    const keys = Array.from({ length: 24 }, (_, i) => eventKey(`route${i}`));
    const own = await owners(ns, keys);
    assert.equal(new Set(Object.values(own)).size, ns.length, "keys on every node");
    await seatq.queueInfo(cluster, keys[0]).catch(() => {}); // connects, learns the slots
    await resetStats(ns);
    for (const [i, key] of keys.entries()) {
      await ensureStock(cluster, key, 5);
      const { sold } = await buyerFlow(cluster, key, `buyer${i}`, { qty: 1 });
      assert.equal(Number(sold.sold), 1);
    }
    assert.equal(await moved(ns), 0);
    const joins = await Promise.all(ns.map(async (n) => statField(await n.info("commandstats"), "cmdstat_queue.enqueue", "calls")));
    const expected = ns.map((_, i) => Object.values(own).filter((o) => o === i).length);
    assert.deepEqual(joins, expected);
  } finally {
    cluster.disconnect();
    ns.forEach((n) => n.disconnect());
  }
});

test("without SeatqCommand, ioredis sends seatq commands to a random node first (MOVED)", { skip }, async () => {
  const ns = nodes();
  const cluster = connect(clusterUrls[0], { cluster: true });
  try {
    const keys = Array.from({ length: 24 }, (_, i) => eventKey(`naive${i}`));
    await cluster.call("QUEUE.LEN", keys[0]);
    await resetStats(ns);
    for (const key of keys) assert.equal(await cluster.call("QUEUE.LEN", key), 0); // answers, after a detour
    assert.ok((await moved(ns)) > 0, "the generic call was MOVED at least once");
  } finally {
    cluster.disconnect();
    ns.forEach((n) => n.disconnect());
  }
});
