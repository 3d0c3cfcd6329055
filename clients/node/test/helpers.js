"use strict";

const Redis = require("ioredis");
const { randomBytes } = require("node:crypto");

const url = process.env.SEATQ_TEST_URL;
const clusterUrls = (process.env.SEATQ_TEST_CLUSTER_URLS || "").split(",").filter(Boolean);
const passKeys = process.env.SEATQ_TEST_PASS_KEYS || "";

if (!url) {
  console.error("SEATQ_TEST_URL is not set: run through `cargo test --test clients` (tests/clients.rs)");
  process.exit(2);
}

/** A fresh event key. */
const eventKey = (name) => `node:${name}:${randomBytes(4).toString("hex")}`;

/** `kid:secret kid2:secret2` -> Map(kid -> secret). */
function parsePassKeys(text) {
  return new Map(
    text
      .split(/\s+/)
      .filter(Boolean)
      .map((item) => [item.slice(0, item.indexOf(":")), item.slice(item.indexOf(":") + 1)]),
  );
}

/** Polls `check` until it returns something truthy. */
async function eventually(check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

module.exports = { Redis, url, clusterUrls, passKeys, eventKey, parsePassKeys, eventually };
