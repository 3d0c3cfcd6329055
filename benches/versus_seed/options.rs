//! The command line. A bad option stops the benchmark with the usage line.

use seatq_testkit::server::ServerKind;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Section {
    Commands,
    Scale,
    Latency,
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
--only commands|scale|latency|instructions  --instr-calls N (2000)  --instr-depth N (16)  \
--instr-waiting N,N,.. (1000,10000,100000,1000000)  --admission-cells RATE:DELAY:ABANDON,.. \
(*:*:*)  --admission-seconds S (20)";

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
                        "instructions" => Section::Instructions,
                        "admission" => Section::Admission,
                        other => {
                            panic!("--only {other}: use commands, scale, latency, instructions or admission")
                        }
                    })
                }
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
        self.only.is_none_or(|only| only == s)
    }
}
