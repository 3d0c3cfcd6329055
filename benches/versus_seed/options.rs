//! The command line. A bad option stops the benchmark with the usage line.

use seatq_testkit::server::ServerKind;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Section {
    Commands,
    Scale,
    Latency,
    /// The sharded mode's simulation (no server).
    Shards,
    Stalls,
    Instructions,
    Admission,
}

pub struct Options {
    pub kind: ServerKind,
    pub rounds: usize,
    pub ops: usize,
    pub memory_users: usize,
    pub rate: f64,
    pub seconds: f64,
    pub connections: usize,
    pub only: Option<Section>,
    /// The shards section: users per run and K values.
    pub sim_users: Vec<usize>,
    pub sim_shards: Vec<usize>,
    /// Waiting users of the stalls section's rows that have a size.
    pub stall_users: usize,
    /// The stalls rows to run (all when None).
    pub stall_rows: Option<Vec<u32>>,
    /// Run the stalls section's servers and prober SCHED_FIFO (chrt), so that other processes'
    /// load is not measured as the server's stalls.
    pub stall_fifo: bool,
    /// Stalls: count one slice of seatq's work under callgrind instead of driving the rows.
    pub stall_instructions: bool,
    /// Instructions section: calls per cell, pipeline depth, STATUS levels (waiting users).
    pub instr_calls: usize,
    pub instr_depth: usize,
    pub instr_waiting: Vec<usize>,
    /// Admission section: RATE:DELAY:ABANDON cells (`*` for every grid value), window seconds.
    pub admission_cells: Option<String>,
    pub admission_seconds: f64,
}

const USAGE: &str = "options: --server redis|valkey  --rounds N (3)  --ops N per phase (20000)  \
--memory-users N (1000000)  --rate REQ/S (30000)  --seconds S (10)  --connections N (8)  \
--only commands|scale|latency|stalls|instructions|shards|admission  --instr-calls N (2000)  \
--instr-depth N (16)  --instr-waiting N,N,.. (1000,10000,100000,1000000)  --stall-users N (10000000)  \
--stall-rows 0,1,...,10  --stall-fifo  --stall-instructions  --sim-users N,N,.. (1000000,10000000)  \
--sim-shards K,K,.. (1,2,4,8,16)  --admission-cells RATE:DELAY:ABANDON,.. (*:*:*)  --admission-seconds S (20)";

impl Options {
    pub fn parse() -> Options {
        let mut o = Options {
            kind: ServerKind::Redis,
            rounds: 3,
            ops: 20_000,
            memory_users: 1_000_000,
            rate: 30_000.0,
            seconds: 10.0,
            connections: 8,
            only: None,
            sim_users: vec![1_000_000, 10_000_000],
            sim_shards: vec![1, 2, 4, 8, 16],
            stall_users: 10_000_000,
            stall_rows: None,
            stall_fifo: false,
            stall_instructions: false,
            instr_calls: 2_000,
            instr_depth: 16,
            instr_waiting: vec![1_000, 10_000, 100_000, 1_000_000],
            admission_cells: None,
            admission_seconds: 20.0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| -> String {
                args.next()
                    .unwrap_or_else(|| panic!("{name} needs a value; {USAGE}"))
            };
            fn list(name: &str, v: String) -> Vec<usize> {
                v.split(',')
                    .map(|x| num(name, x.trim().to_string()))
                    .collect()
            }
            fn num<T: std::str::FromStr>(name: &str, v: String) -> T {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}: not a number: {v}; {USAGE}"))
            }
            match a.as_str() {
                "--server" => {
                    let name = value("--server");
                    o.kind = ServerKind::from_name(&name)
                        .unwrap_or_else(|| panic!("--server {name}: use redis or valkey"))
                }
                "--rounds" => o.rounds = num(&a, value(&a)),
                "--ops" => o.ops = num(&a, value(&a)),
                "--memory-users" => o.memory_users = num(&a, value(&a)),
                "--rate" => o.rate = num(&a, value(&a)),
                "--seconds" => o.seconds = num(&a, value(&a)),
                "--connections" => o.connections = num(&a, value(&a)),
                "--stall-fifo" => o.stall_fifo = true,
                "--stall-instructions" => o.stall_instructions = true,
                "--stall-users" => o.stall_users = num(&a, value(&a)),
                "--stall-rows" => {
                    let v = value(&a);
                    o.stall_rows = Some(v.split(',').map(|r| num(&a, r.to_string())).collect())
                }
                "--instr-calls" => o.instr_calls = num(&a, value(&a)),
                "--instr-depth" => o.instr_depth = num(&a, value(&a)),
                "--instr-waiting" => {
                    o.instr_waiting = value(&a)
                        .split(',')
                        .map(|v| num(&a, v.replace('_', "")))
                        .collect()
                }
                "--admission-cells" => o.admission_cells = Some(value(&a)),
                "--admission-seconds" => o.admission_seconds = num(&a, value(&a)),
                "--only" => {
                    o.only = Some(match value("--only").as_str() {
                        "commands" => Section::Commands,
                        "scale" | "memory" => Section::Scale,
                        "latency" => Section::Latency,
                        "stalls" => Section::Stalls,
                        "instructions" => Section::Instructions,
                        "shards" => Section::Shards,
                        "admission" => Section::Admission,
                        other => panic!(
                            "--only {other}: use commands, scale, latency, stalls, instructions, \
                             shards or admission"
                        ),
                    })
                }
                "--sim-users" => o.sim_users = list(&a, value(&a)),
                "--sim-shards" => o.sim_shards = list(&a, value(&a)),
                "--bench" => {} // cargo bench passes it
                other => panic!("unknown argument {other}; {USAGE}"),
            }
        }
        assert!(o.rounds >= 1 && o.ops >= 16, "--rounds >= 1, --ops >= 16");
        assert!(
            o.instr_calls >= 100 && o.instr_depth >= 1 && !o.instr_waiting.is_empty(),
            "--instr-calls >= 100, --instr-depth >= 1, --instr-waiting not empty"
        );
        assert!(o.connections >= 2, "--connections >= 2 (one admits)");
        assert!(o.rate > 0.0 && o.seconds > 0.0, "--rate and --seconds > 0");
        o
    }

    pub fn runs(&self, s: Section) -> bool {
        // The stalls and admission sections take a quarter of an hour or more: only when asked.
        match self.only {
            None => !matches!(s, Section::Stalls | Section::Admission),
            Some(only) => only == s,
        }
    }

    /// Whether a section that needs the server runs.
    pub fn needs_server(&self) -> bool {
        self.only != Some(Section::Shards)
    }
}
