"use strict";
// Passes issued by seatq (seatq.pass-keys configured on the server) verify with Node's
// jsonwebtoken and the shared key; tampered, expired and wrong-key passes do not.

const test = require("node:test");
const assert = require("node:assert/strict");
const jwt = require("jsonwebtoken");
const { Redis, url, passKeys, parsePassKeys, eventKey, eventually } = require("./helpers");
const { seatq } = require("../seatq");

const skip = passKeys ? false : "SEATQ_TEST_PASS_KEYS is not set";

async function admission(r, ev, user) {
  const { ticket } = await seatq.enqueue(r, ev, user);
  await eventually(async () => (await seatq.status(r, ev, ticket)).state === "admitted");
  return seatq.admit(r, ev, ticket);
}

async function issuedPass(r, ev, user) {
  return (await admission(r, ev, user)).pass;
}

/** The secret for the pass's kid, as a verifier that knows seatq.pass-keys would pick it. */
function secretFor(keys, token) {
  const { header } = jwt.decode(token, { complete: true });
  return (header, callback) => {
    const secret = keys.get(header.kid);
    callback(secret ? null : new Error(`unknown kid ${header.kid}`), secret);
  };
}

function verify(token, key, options = {}) {
  return new Promise((resolve, reject) =>
    jwt.verify(token, key, { algorithms: ["HS256"], issuer: "seatq", ...options }, (err, claims) =>
      err ? reject(err) : resolve(claims),
    ),
  );
}

test("a pass issued by seatq verifies with jsonwebtoken", { skip }, async () => {
  const r = new Redis(url);
  const ev = eventKey("pass");
  try {
    const keys = parsePassKeys(passKeys);
    const adm = await admission(r, ev, "nia");
    const token = adm.pass;
    const { header } = jwt.decode(token, { complete: true });
    assert.deepEqual(header, { alg: "HS256", kid: [...keys.keys()][0], typ: "JWT" });
    const claims = await verify(token, secretFor(keys, token), { subject: "nia" });
    assert.equal(claims.evt, ev);
    assert.equal(claims.tkt, 0);
    assert.ok(claims.iat <= Date.now() / 1000 && Date.now() / 1000 < claims.exp);
    // Sessions end on whole seconds: the JWT's exp is exactly the session's end.
    assert.equal(claims.exp * 1000, Number(adm.expires_at_ms));
    assert.equal(Number((await seatq.verify(r, ev, token)).expires_at_ms), claims.exp * 1000);
    assert.equal((await seatq.verify(r, ev, token)).state, "valid");
  } finally {
    r.disconnect();
  }
});

test("tampered, expired and wrong-key passes do not verify", { skip }, async () => {
  const r = new Redis(url);
  const ev = eventKey("bad");
  try {
    const keys = parsePassKeys(passKeys);
    const token = await issuedPass(r, ev, "oli");
    const [h, p, s] = token.split(".");

    const claims = JSON.parse(Buffer.from(p, "base64url"));
    claims.sub = "mallory";
    const forged = [h, Buffer.from(JSON.stringify(claims)).toString("base64url"), s].join(".");
    await assert.rejects(verify(forged, secretFor(keys, forged)), { name: "JsonWebTokenError", message: "invalid signature" });
    assert.equal((await seatq.verify(r, ev, forged)).state, "invalid");

    await assert.rejects(verify(token, "w".repeat(40)), { name: "JsonWebTokenError", message: "invalid signature" });
    const unknownKid = new Map([["other", "x".repeat(40)]]);
    await assert.rejects(verify(token, secretFor(unknownKid, token)), /unknown kid/);

    const { exp } = jwt.decode(token);
    await assert.rejects(verify(token, secretFor(keys, token), { clockTimestamp: exp }), { name: "TokenExpiredError" });
    await assert.rejects(verify(token, secretFor(keys, token), { subject: "someone-else" }), /jwt subject invalid/);
    await assert.rejects(verify(token, secretFor(keys, token), { algorithms: ["RS256"] }), /invalid algorithm/);
  } finally {
    r.disconnect();
  }
});
