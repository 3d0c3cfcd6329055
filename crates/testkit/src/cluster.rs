//! A Redis Cluster of three primaries, each a [`Server`] with the module loaded, created with
//! `redis-cli --cluster create` (installed with redis-server; Valkey accepts it); replicas are
//! added on demand.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};

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
        let nodes: Vec<Server> = (0..PRIMARIES).map(|_| Self::node(kind, &[])).collect();
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

    fn node(kind: ServerKind, extra: &[&str]) -> Server {
        let mut args = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ];
        args.extend_from_slice(extra);
        Server::start(kind, &args)
    }

    /// Adds a node as a replica of node `of` (with `extra` server arguments); returns its
    /// index once it has synced.
    pub fn add_replica(&mut self, of: usize, extra: &[&str]) -> usize {
        let kind = self.nodes[of].kind;
        let replica = Self::node(kind, extra);
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
