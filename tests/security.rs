//! The attacks of issue 15, on every supported server: a client that knows its own ticket
//! guesses its neighbours' (the seed's `<ms>-<seq>` IDs fell to a few thousand probes), reuses
//! another user's idempotency key, and forges, tampers with, replays or outlives passes.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use redis::{Connection, ConnectionLike, Value};
use seatq_testkit::rng::Rng;
use seatq_testkit::*;

const GUESSES: usize = 1_000_000;
/// Users who joined just before and just after the attacker.
const NEIGHBOURS: usize = 1_000;

fn send_all(con: &mut Connection, commands: &[Vec<String>]) -> Vec<Value> {
    let mut pipe = redis::pipe();
    for c in commands {
        let mut cmd = redis::cmd(&c[0]);
        for a in &c[1..] {
            cmd.arg(a.as_str());
        }
        pipe.add_command(cmd);
    }
    // Not `pipe.query`: that stops at the first error, and every reply here should be one.
    con.req_packed_commands(&pipe.get_packed_pipeline(), 0, commands.len())
        .expect("pipeline")
}

/// The tag variants an attacker tries for one serial: its own tag (tags differ per serial),
/// its own with each bit flipped, the same in upper case, all zeros, and random ones.
fn tags(own: &str, rng: &mut Rng, count: usize) -> Vec<String> {
    let own_bits = u64::from_str_radix(own, 16).unwrap();
    let mut out = vec![
        own.to_string(),
        own.to_uppercase(),
        "0".repeat(16),
        format!("{own}0"),
        own[..15].to_string(),
    ];
    out.extend((0..64).map(|bit| format!("{:016x}", own_bits ^ (1 << bit))));
    while out.len() < count {
        out.push(format!("{:016x}", rng.next_u64()));
    }
    out.truncate(count);
    out
}

#[test]
fn a_million_guessed_tickets_find_nothing_and_change_nothing() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        // Nothing lapses or moves during the attack: long heartbeats, windows and passes, and
        // CAPACITY reached by the first callers (so guesses could hit admitted tickets too).
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "HEARTBEAT",
                "3600000",
                "CLAIM-TTL",
                "3600000",
                "PASS-TTL",
                "3600000",
                "SESSION-MAX",
                "3600000",
                "RATE",
                "10000",
                "CAPACITY",
                "100",
            ],
        );
        let mut joins: Vec<Vec<String>> = (0..NEIGHBOURS)
            .map(|i| vec!["QUEUE.ENQUEUE".into(), "ev".into(), format!("before-{i}")])
            .collect();
        joins.push(vec!["QUEUE.ENQUEUE".into(), "ev".into(), "mallory".into()]);
        joins.extend(
            (0..NEIGHBOURS)
                .map(|i| vec!["QUEUE.ENQUEUE".into(), "ev".into(), format!("after-{i}")]),
        );
        let replies = send_all(&mut con, &joins);
        let own = text(&record(&replies[NEIGHBOURS])["ticket"]);
        let (own_serial, own_tag) = own.split_once('.').unwrap();
        let own_serial: i64 = own_serial.parse().unwrap();
        let mut real: Vec<String> = replies.iter().map(|r| text(&record(r)["ticket"])).collect();
        real.sort();
        wait_until(Duration::from_secs(10), || {
            int(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["sessions"]) == 100
        });
        let before = settled(&mut con);
        let journal_before = int(&ok(&mut con, &["XLEN", "{ev}.journal"]));

        // Every serial from well before the first neighbour to well after the last, each
        // with the same number of tag variants; the attacker's own ticket is left out.
        let first = own_serial - NEIGHBOURS as i64 - 500;
        let serials: Vec<i64> = (first.max(0)..own_serial + NEIGHBOURS as i64 + 500).collect();
        let per_serial = GUESSES.div_ceil(serials.len());
        let mut rng = Rng::new(15);
        let mut guesses = Vec::with_capacity(GUESSES);
        for serial in &serials {
            for tag in tags(own_tag, &mut rng, per_serial) {
                let guess = format!("{serial}.{tag}");
                if guess != own {
                    guesses.push(guess);
                }
            }
        }
        guesses.extend([
            format!("0{own}"),
            format!("+{own}"),
            format!(" {own}"),
            format!("{own} "),
            own.replace('.', "-"),
            own.replace('.', ".."),
            format!("{}.{own_tag}", own_serial + (1 << 32)),
            format!("{}.{own_tag}", own_serial - (1 << 32)),
        ]);
        assert!(guesses.len() >= GUESSES, "{} guesses", guesses.len());
        assert!(
            guesses.iter().all(|g| real.binary_search(g).is_err()),
            "no guess is a real ticket by chance"
        );

        // Each guess goes to a command that would act on the ticket it names: read it, claim
        // its session and read the pass, end it, renew it, revoke it.
        let verbs = [
            "QUEUE.STATUS",
            "QUEUE.ADMIT",
            "QUEUE.LEAVE",
            "QUEUE.RENEW",
            "QUEUE.REVOKE",
        ];
        let mut answers = std::collections::BTreeMap::<String, usize>::new();
        for (batch, chunk) in guesses.chunks(20_000).enumerate() {
            let commands: Vec<Vec<String>> = chunk
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let verb = verbs[(batch * 20_000 + i) % verbs.len()];
                    vec![verb.to_string(), "ev".into(), g.clone()]
                })
                .collect();
            for (reply, guess) in send_all(&mut con, &commands).iter().zip(chunk) {
                let answer = match reply {
                    Value::ServerError(e) => {
                        assert_eq!(
                            e.details().map(str::trim),
                            Some(guess.trim()),
                            "the error names the guess and nothing else"
                        );
                        e.code().to_string()
                    }
                    other => panic!("{guess} found something: {other:?}"),
                };
                *answers.entry(answer).or_default() += 1;
            }
        }
        eprintln!("{} guesses answered {answers:?}", guesses.len());
        assert_eq!(
            answers.keys().collect::<Vec<_>>(),
            ["NO_SUCH_TICKET"],
            "a guessed ticket answers like a missing one"
        );
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), before);
        assert_eq!(
            int(&ok(&mut con, &["XLEN", "{ev}.journal"])),
            journal_before
        );
        // The real tickets still work.
        assert_eq!(text(&status(&mut con, "ev", &own)["state"]), "waiting");
        let first = record(&ok(&mut con, &["QUEUE.STATUS", "ev", "USER", "before-0"]));
        assert_eq!(text(&first["ticket"]), real[0]);
    });
}

#[test]
fn a_reused_idempotency_key_names_no_other_users_ticket() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let alice = record(&ok(
            &mut con,
            &["QUEUE.ENQUEUE", "ev", "alice", "IDEMPOTENCY", "k1"],
        ));
        let alice_ticket = text(&alice["ticket"]);
        let to_alice = err(
            &mut con,
            &["QUEUE.ENQUEUE", "ev", "alice", "IDEMPOTENCY", "k1"],
        );
        assert_eq!(to_alice, format!("DUPLICATE {alice_ticket}"));
        let to_mallory = err(
            &mut con,
            &["QUEUE.ENQUEUE", "ev", "mallory", "IDEMPOTENCY", "k1"],
        );
        assert_eq!(to_mallory, "DUPLICATE the idempotency key was already used");
        let info = record(&ok(&mut con, &["QUEUE.INFO", "ev"]));
        assert_eq!(int(&info["joined_total"]), 1);
    });
}

// ---- passes ------------------------------------------------------------------------------

const K1: &str = "k1:first-secret-at-least-32-bytes-long!!";
const K2: &str = "k2:second-secret-at-least-32-bytes-long!";

fn b64_json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    let mut it = token.split('.');
    let mut decode = || -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap()
    };
    (decode(), decode())
}

fn hs256(input: &str, secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// An HS256 JWT made here, with the `hmac`/`sha2` crates: what any other signer would make.
fn sign(header: &serde_json::Value, claims: &serde_json::Value, secret: &str) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = hs256(&input, secret);
    format!("{input}.{signature}")
}

/// Checks a JWT's signature the way any HS256 verifier does.
fn signed_with(token: &str, secret: &str) -> bool {
    let (input, signature) = token.rsplit_once('.').unwrap();
    hs256(input, secret) == signature
}

fn secret(key: &str) -> &str {
    key.split_once(':').unwrap().1
}

fn hold(con: &mut Connection, user: &str, seat: &str, pass: &str) -> Result<(), String> {
    match run(con, &["SEAT.HOLD", "ev", user, seat, "PASS", pass]) {
        Ok(_) => Ok(()),
        Err(e) => Err(error_line(&e)),
    }
}

fn claim(con: &mut Connection, user: &str) -> String {
    enqueue(con, "ev", user);
    let mut pass = String::new();
    wait_until(Duration::from_secs(5), || {
        match run(con, &["QUEUE.ADMIT", "ev", "USER", user]) {
            Ok(r) => {
                pass = text(&record(&r)["pass"]);
                true
            }
            Err(_) => false,
        }
    });
    pass
}

#[test]
fn passes_verify_anywhere_and_only_a_live_sessions_own_pass_holds() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(&mut con, &["CONFIG", "SET", "seatq.pass-keys", K1]);
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "RATE",
                "1000",
                "PASS-TTL",
                "60000",
            ],
        );
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "other",
                "SET",
                "RATE",
                "1000",
                "PASS-TTL",
                "60000",
            ],
        );
        let seats: Vec<String> = (1..=12).map(|i| format!("A-{i}")).collect();
        let mut add = vec!["SEAT.ADD", "ev"];
        add.extend(seats.iter().map(String::as_str));
        ok(&mut con, &add);

        // A standard HS256 JWT: the signature checks with the configured secret here, outside
        // seatq, and the claims name the event, user, ticket, times and key.
        let alice = claim(&mut con, "alice");
        let (header, claims) = parts(&alice);
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], "k1");
        assert!(signed_with(&alice, secret(K1)));
        assert!(!signed_with(&alice, secret(K2)));
        assert_eq!(claims["iss"], "seatq");
        assert_eq!(claims["evt"], "ev");
        assert_eq!(claims["sub"], "alice");
        assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
        assert!(claims["tkt"].is_u64());

        // Forgeries: each refused by SEAT.HOLD, and nothing is held.
        let bob = claim(&mut con, "bob");
        let (_, bob_claims) = parts(&bob);
        let alice_sig = alice.rsplit_once('.').unwrap().1;
        let mut longer = claims.clone();
        longer["exp"] = (claims["exp"].as_u64().unwrap() + 86_400).into();
        let mut for_other_event = claims.clone();
        for_other_event["evt"] = "other".into();
        let forged = [
            (
                "a wrong key",
                sign(&header, &claims, "not-the-secret-but-32-bytes-long!!"),
            ),
            (
                "an unknown kid",
                sign(
                    &serde_json::json!({"alg":"HS256","kid":"k9"}),
                    &claims,
                    secret(K1),
                ),
            ),
            (
                "the event's own kid",
                sign(
                    &serde_json::json!({"alg":"HS256","kid":"event"}),
                    &claims,
                    secret(K1),
                ),
            ),
            (
                "alg none",
                format!(
                    "{}.{}.",
                    b64_json(&serde_json::json!({"alg":"none","kid":"k1"})),
                    b64_json(&claims)
                ),
            ),
            (
                "bob's claims under alice's signature",
                format!(
                    "{}.{}.{alice_sig}",
                    b64_json(&header),
                    b64_json(&bob_claims)
                ),
            ),
            ("a later expiry, unsigned", {
                let mut t = sign(&header, &longer, secret(K1));
                t.truncate(t.rfind('.').unwrap());
                format!("{t}.{alice_sig}")
            }),
            // Signed with the right key (a leaked key): still not a live session's pass.
            (
                "another event's claims",
                sign(&header, &for_other_event, secret(K1)),
            ),
        ];
        for (what, token) in &forged {
            let e = hold(&mut con, "alice", "A-1", token)
                .err()
                .unwrap_or_else(|| panic!("held with {what}"));
            assert!(e.starts_with("PASS_INVALID"), "{what}: {e}");
        }
        let e = hold(&mut con, "alice", "A-1", &bob).unwrap_err();
        assert!(e.starts_with("PASS_INVALID"), "bob's pass for alice: {e}");
        let info = record(&ok(&mut con, &["SEAT.INFO", "ev"]));
        assert_eq!(int(&info["seats_held"]), 0);

        // A pass for one event does not open another sharing the keys.
        ok(&mut con, &["SEAT.ADD", "other", "B-1"]);
        let e = match run(
            &mut con,
            &["SEAT.HOLD", "other", "alice", "B-1", "PASS", &alice],
        ) {
            Err(e) => error_line(&e),
            Ok(v) => panic!("held with another event's pass: {v:?}"),
        };
        assert!(e.starts_with("PASS_INVALID"), "{e}");

        // Whoever holds a signing key is trusted (docs/security.md): a pass they sign for a
        // live session holds, but only while that session lives, whatever its `exp` says.
        let minted = sign(&header, &longer, secret(K1));
        hold(&mut con, "alice", "A-12", &minted).unwrap();
        ok(&mut con, &["SEAT.RELEASE", "ev", "alice", "A-12"]);

        // Rotation: k2 signs new passes, k1's stay valid while listed, then stop.
        hold(&mut con, "alice", "A-1", &alice).unwrap();
        ok(
            &mut con,
            &["CONFIG", "SET", "seatq.pass-keys", &format!("{K2} {K1}")],
        );
        let carol = claim(&mut con, "carol");
        assert_eq!(parts(&carol).0["kid"], "k2");
        hold(&mut con, "alice", "A-2", &alice).unwrap();
        hold(&mut con, "carol", "A-3", &carol).unwrap();
        ok(&mut con, &["CONFIG", "SET", "seatq.pass-keys", K2]);
        let e = hold(&mut con, "alice", "A-4", &alice).unwrap_err();
        assert!(e.starts_with("PASS_INVALID"), "k1 retired: {e}");
        hold(&mut con, "carol", "A-4", &carol).unwrap();
        // A renewal re-signs with the current key.
        let renewed = text(&record(&ok(&mut con, &["QUEUE.RENEW", "ev", "USER", "alice"]))["pass"]);
        assert_eq!(parts(&renewed).0["kid"], "k2");
        hold(&mut con, "alice", "A-5", &renewed).unwrap();

        // Revocation is honoured by SEAT.HOLD and VERIFY, on the very next command.
        assert_eq!(
            int(&ok(&mut con, &["QUEUE.REVOKE", "ev", "USER", "carol"])),
            1
        );
        let e = hold(&mut con, "carol", "A-6", &carol).unwrap_err();
        assert!(e.starts_with("PASS_INVALID"), "revoked: {e}");
        let verify = record(&ok(&mut con, &["QUEUE.VERIFY", "ev", &carol]));
        assert_eq!(text(&verify["state"]), "revoked");

        // A key list that would lock everyone out, or sign with a short key, is refused whole.
        for bad in [
            "k3:short",
            "k1 k2",
            "event:this-secret-is-at-least-32-bytes!",
            &format!("{K2} {K2}"),
        ] {
            assert!(
                run(&mut con, &["CONFIG", "SET", "seatq.pass-keys", bad]).is_err(),
                "{bad}"
            );
        }
        let keys = items(&ok(&mut con, &["CONFIG", "GET", "seatq.pass-keys"]));
        assert_eq!(text(&keys[1]), K2, "unchanged by the refused sets");
    });
}
