//! A Redis Cluster of three primaries, each a [`Server`] with the module loaded, created with
//! `redis-cli --cluster create` (installed with redis-server; Valkey accepts it); replicas are
//! added on demand.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};

use crate::server::Wrap;
use crate::{ok, run, text, wait_until, Server, ServerKind};

/// The fewest primaries `redis-cli --cluster create` accepts.
const PRIMARIES: usize = 3;

pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Starts the nodes, gives them the slots and waits until every one of them reports
    /// `cluster_state:ok`.
    pub fn start(kind: ServerKind) -> Cluster {
        Self::start_with(kind, &[])
    }

    /// `start`, every node with `extra` server arguments too (e.g. `--seatq.pass-keys`).
    pub fn start_with(kind: ServerKind, extra: &[&str]) -> Cluster {
        Self::start_wrapped(kind, extra, |_| Wrap::default())
    }

    /// `start_with`, primary `i` wrapped as `wrap(i)` says (a fake clock, callgrind).
    pub fn start_wrapped(
        kind: ServerKind,
        extra: &[&str],
        wrap: impl Fn(usize) -> Wrap,
    ) -> Cluster {
        let nodes: Vec<Server> = (0..PRIMARIES)
            .map(|i| Self::node(kind, extra, &wrap(i)))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (installed with redis-server) creates the cluster");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for node in &nodes {
            let mut con = node.connection();
            wait_until(Duration::from_secs(20), || {
                text(&ok(&mut con, &["CLUSTER", "INFO"])).contains("cluster_state:ok")
            });
        }
        Cluster { nodes }
    }

    fn node(kind: ServerKind, extra: &[&str], wrap: &Wrap) -> Server {
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ];
        args.extend_from_slice(extra);
        Server::start_wrapped(kind, wrap, &args)
    }

    /// Adds a node as a replica of node `of` (with `extra` server arguments); returns its
    /// index once it has synced.
    pub fn add_replica(&mut self, of: usize, extra: &[&str]) -> usize {
        self.add_replica_wrapped(of, extra, &Wrap::default())
    }

    /// `add_replica`, the replica wrapped as `wrap` says.
    pub fn add_replica_wrapped(&mut self, of: usize, extra: &[&str], wrap: &Wrap) -> usize {
        let kind = self.nodes[of].kind;
        let replica = Self::node(kind, extra, wrap);
        let mut con = replica.connection();
        ok(
            &mut con,
            &[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &self.nodes[of].port.to_string(),
            ],
        );
        let primary_id = self.node_id(of);
        wait_until(Duration::from_secs(20), || {
            run(&mut con, &["CLUSTER", "REPLICATE", &primary_id]).is_ok()
        });
        wait_until(Duration::from_secs(30), || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut con)
                .unwrap();
            info.contains("master_link_status:up")
                && text(&ok(&mut con, &["CLUSTER", "INFO"])).contains("cluster_state:ok")
        });
        self.nodes.push(replica);
        self.nodes.len() - 1
    }

    /// Node `i`'s ID, as CLUSTER SETSLOT names nodes.
    pub fn node_id(&self, i: usize) -> String {
        text(&ok(&mut self.nodes[i].connection(), &["CLUSTER", "MYID"]))
    }

    /// The index of the node serving `key` (the others answer MOVED).
    pub fn owner(&self, key: &str) -> usize {
        (0..self.nodes.len())
            .find(|&i| run(&mut self.nodes[i].connection(), &["QUEUE.LEN", key]).is_ok())
            .expect("some node serves the key")
    }

    /// Starts moving `slot` from node `from` to node `to` (IMPORTING, then MIGRATING).
    pub fn migrating(&self, slot: u16, from: usize, to: usize) {
        let slot = slot.to_string();
        ok(
            &mut self.nodes[to].connection(),
            &[
                "CLUSTER",
                "SETSLOT",
                &slot,
                "IMPORTING",
                &self.node_id(from),
            ],
        );
        ok(
            &mut self.nodes[from].connection(),
            &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &self.node_id(to)],
        );
    }

    /// Moves `keys` from node `from` to node `to` (MIGRATE ... KEYS).
    pub fn migrate(&self, from: usize, to: usize, keys: &[String]) {
        let mut migrate = redis::cmd("MIGRATE");
        migrate
            .arg("127.0.0.1")
            .arg(self.nodes[to].port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys);
        let _: () = migrate.query(&mut self.nodes[from].connection()).unwrap();
    }

    /// Ends a slot move: every node learns that `to` serves `slot`.
    pub fn assign(&self, slot: u16, to: usize) {
        let id = self.node_id(to);
        for node in &self.nodes {
            ok(
                &mut node.connection(),
                &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &id],
            );
        }
    }

    /// A cluster-aware client: it routes each command to the key's node.
    pub fn client(&self) -> ClusterConnection {
        let urls: Vec<String> = self.nodes.iter().map(|n| n.url()).collect();
        ClusterClient::new(urls).unwrap().get_connection().unwrap()
    }
}
