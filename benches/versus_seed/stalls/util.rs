//! Small helpers: commands, fills, servers.

use super::*;

// ---------------------------------------------------------------------------------------------
// Small helpers

pub(super) fn cmd(con: &mut Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
}

/// Runs a command, returning its reply (or error) and the client's wall time in ms.
pub(super) fn timed(con: &mut Connection, args: &[&[u8]]) -> (redis::RedisResult<Value>, f64) {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).expect("name"));
    for a in &args[1..] {
        c.arg(*a);
    }
    let t = Instant::now();
    let r = c.query(con);
    (r, t.elapsed().as_secs_f64() * 1000.0)
}

pub(super) fn server_ms(con: &mut Connection) -> u64 {
    let v: Vec<u64> = redis::cmd("TIME").query(con).expect("TIME");
    v[0] * 1000 + v[1] / 1000
}

pub(super) fn info_num(con: &mut Connection, section: &str, name: &str) -> i64 {
    info_value(&info(con, section), name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An effect counter of INFO seatq (`effects_total` entry `name`).
pub(super) fn effects(con: &mut Connection, name: &str) -> u64 {
    let all = info(con, "seatq");
    all.lines()
        .filter(|l| l.contains("effects_total"))
        .find_map(|l| {
            let (_, v) = l.split_once(':')?;
            info_entry(v, name)?.parse().ok()
        })
        .unwrap_or(0)
}

pub(super) fn field_i(v: &Value, name: &str) -> i64 {
    record_field(v, name).map(int).unwrap_or(-1)
}

pub(super) fn pack(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

pub(super) fn server_pid(con: &mut Connection) -> u32 {
    info_num(con, "server", "process_id") as u32
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
pub(super) fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

pub(super) fn load_average() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

pub(super) struct Filled {
    pub(super) secs: f64,
    pub(super) failures: usize,
    pub(super) first_failure: Option<String>,
    /// (index, ticket) of every `sample_every`-th join.
    pub(super) sampled: Vec<(usize, String)>,
}

/// Sends `make(i)` for every i of `range` in pipelines of `depth` over a bare connection;
/// keeps the ticket of every `sample_every`-th reply (0: none).
pub(super) fn fill(
    port: u16,
    range: Range<usize>,
    depth: usize,
    sample_every: usize,
    label: &str,
    mut make: impl FnMut(usize, &mut Vec<u8>),
) -> Filled {
    let mut wire = Wire::connect(port);
    let mut f = Filled {
        secs: 0.0,
        failures: 0,
        first_failure: None,
        sampled: Vec::new(),
    };
    let start = Instant::now();
    let mut bytes = Vec::new();
    let (mut out, mut ends) = (Vec::new(), Vec::new());
    let mut i = range.start;
    let mut next_report = range.start + 1_000_000;
    while i < range.end {
        let end = (i + depth).min(range.end);
        bytes.clear();
        for k in i..end {
            make(k, &mut bytes);
        }
        out.clear();
        ends.clear();
        let sent = Instant::now();
        wire.exchange(&bytes, end - i, &mut out, &mut ends);
        if FIFO.load(Ordering::Relaxed) {
            // A SCHED_FIFO server kept busy for a whole second is throttled by the kernel
            // (sched_rt_runtime_us: 950 ms of each second) and stops for up to 50 ms: leave it
            // a fifth of the time idle.
            std::thread::sleep(sent.elapsed() / 4);
        }
        let mut from = 0;
        for (j, &to) in ends.iter().enumerate() {
            let r = &out[from..to];
            if r[0] == b'-' {
                f.failures += 1;
                f.first_failure
                    .get_or_insert_with(|| String::from_utf8_lossy(&r[1..r.len() - 2]).into());
            } else if sample_every > 0 && (i + j) % sample_every == 0 {
                let v = redis::parse_redis_value(r).expect("reply");
                if let Some(t) = record_field(&v, "ticket") {
                    f.sampled.push((i + j, text(t)));
                }
            }
            from = to;
        }
        i = end;
        if i >= next_report {
            next_report += 1_000_000;
            progress(&format!(
                "stalls: {label} at {} ({:.0} s)",
                thousands(i as f64),
                start.elapsed().as_secs_f64()
            ));
        }
    }
    f.secs = start.elapsed().as_secs_f64();
    if let Some(why) = &f.first_failure {
        progress(&format!("stalls: {label}: {} refused ({why})", f.failures));
    }
    f
}

pub(super) fn enqueue(key: &str) -> impl FnMut(usize, &mut Vec<u8>) + '_ {
    move |i, out| {
        let user = user_id(i);
        pack(&[b"QUEUE.ENQUEUE", key.as_bytes(), user.as_bytes()], out)
    }
}

/// ZADD of members `range` (the same user IDs) in commands of 1,000 members.
pub(super) fn fill_zset(con: &mut Connection, key: &str, range: Range<usize>) {
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for chunk_start in range.clone().step_by(1000) {
        let mut c = redis::cmd("ZADD");
        c.arg(key);
        for i in chunk_start..(chunk_start + 1000).min(range.end) {
            c.arg(i).arg(user_id(i));
        }
        pipe.add_command(c).ignore();
        queued += 1;
        if queued == 20 {
            let _: () = pipe.query(con).expect("ZADD");
            pipe = redis::pipe();
            queued = 0;
        }
    }
    if queued > 0 {
        let _: () = pipe.query(con).expect("ZADD");
    }
}

pub(super) fn start_server(kind: ServerKind, extra: &[&str]) -> Server {
    let mut args: Vec<&str> = MONITORS.to_vec();
    args.extend_from_slice(extra);
    let mut s = Server::start(kind, &args);
    // Loading ten million tickets takes longer than the usual start-up allowance.
    s.start_timeout = Duration::from_secs(600);
    let pid = server_pid(&mut s.connection());
    progress(&format!(
        "stalls: {} started, pid {pid}, port {}",
        kind.name(),
        s.port
    ));
    s
}

/// The largest DATA a ticket takes: 16 pairs of 4,096-byte fields and values, 128 KiB.
pub(super) fn max_data() -> Vec<Vec<u8>> {
    (0..32)
        .map(|i| {
            let mut v = format!("{i:02}").into_bytes();
            v.resize(4096, b'x' + (i % 2) as u8);
            v
        })
        .collect()
}
