//! Commands to a cluster, routed by key slot over one connection per node, with timeouts the
//! coordinator controls: a node that does not answer within the timeout is unreachable *for
//! this tick* (the planner detaches its shards), never a stall. `MOVED` updates the slot map
//! and retries once, `ASK` follows once; a connection error drops that node's connection and
//! asks for a fresh slot map (`CLUSTER SLOTS`) before the next command. On a server without
//! cluster mode every slot is the first address's.

use std::collections::HashMap;
use std::time::Duration;

use redis::{Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue, RedisResult, Value};
use seatq_sharding::naming::key_slot;

/// A primary: its node ID, address and slot ranges.
#[derive(Clone, Debug)]
pub struct Primary {
    pub id: String,
    pub addr: String,
    pub ranges: Vec<(u16, u16)>,
}

pub struct Router {
    /// Login and protocol, with the first seed's address (each node's address replaces it).
    template: ConnectionInfo,
    seeds: Vec<String>,
    connections: HashMap<String, redis::Connection>,
    /// The node address serving each slot.
    slots: Vec<Option<String>>,
    primaries: Vec<Primary>,
    pub cluster: bool,
    stale: bool,
    timeout: Duration,
}

fn addr_of(info: &ConnectionInfo) -> String {
    match &info.addr {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}"),
        ConnectionAddr::Unix(path) => path.display().to_string(),
    }
}

impl Router {
    /// Connects through the first seed URL that answers and reads the slot map.
    pub fn connect(urls: &[String], timeout: Duration) -> RedisResult<Router> {
        let infos: Vec<ConnectionInfo> = urls
            .iter()
            .map(|u| u.as_str().parse())
            .collect::<RedisResult<_>>()?;
        let template = infos.first().cloned().ok_or_else(|| {
            redis::RedisError::from((ErrorKind::InvalidClientConfig, "no --url given"))
        })?;
        let mut router = Router {
            template,
            seeds: infos.iter().map(addr_of).collect(),
            connections: HashMap::new(),
            slots: vec![None; 16384],
            primaries: Vec::new(),
            cluster: false,
            stale: true,
            timeout,
        };
        router.refresh()?;
        Ok(router)
    }

    fn info_for(&self, addr: &str) -> ConnectionInfo {
        let mut info = self.template.clone();
        if let Some((host, port)) = addr.rsplit_once(':') {
            let port = port.parse().unwrap_or(6379);
            info.addr = match &self.template.addr {
                ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => ConnectionAddr::TcpTls {
                    host: host.to_string(),
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => ConnectionAddr::Tcp(host.to_string(), port),
            };
        }
        info
    }

    fn connection(&mut self, addr: &str) -> RedisResult<&mut redis::Connection> {
        if !self.connections.contains_key(addr) {
            let client = redis::Client::open(self.info_for(addr))?;
            let con = client.get_connection_with_timeout(self.timeout)?;
            con.set_read_timeout(Some(self.timeout))?;
            con.set_write_timeout(Some(self.timeout))?;
            self.connections.insert(addr.to_string(), con);
        }
        Ok(self.connections.get_mut(addr).expect("inserted"))
    }

    /// Reads the slot map from the first node that answers.
    pub fn refresh(&mut self) -> RedisResult<()> {
        let mut candidates: Vec<String> = self.primaries.iter().map(|p| p.addr.clone()).collect();
        candidates.extend(self.seeds.iter().cloned());
        candidates.dedup();
        let mut last = None;
        for addr in candidates {
            let reply = self
                .connection(&addr)
                .and_then(|con| redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(con));
            match reply {
                Ok(value) => {
                    self.load_slots(&value);
                    self.cluster = true;
                    self.stale = false;
                    return Ok(());
                }
                Err(e) if e.to_string().contains("cluster support disabled") => {
                    self.cluster = false;
                    self.slots = vec![Some(addr.clone()); 16384];
                    self.primaries = vec![Primary {
                        id: addr.clone(),
                        addr,
                        ranges: vec![(0, 16383)],
                    }];
                    self.stale = false;
                    return Ok(());
                }
                Err(e) => {
                    self.connections.remove(&addr);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| (ErrorKind::IoError, "no node answered").into()))
    }

    fn load_slots(&mut self, value: &Value) {
        let mut slots = vec![None; 16384];
        let mut primaries: Vec<Primary> = Vec::new();
        let Value::Array(ranges) = value else {
            return;
        };
        for range in ranges {
            let Value::Array(parts) = range else { continue };
            let (Some(start), Some(end), Some(Value::Array(node))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let (Ok(start), Ok(end)) = (u16::from_redis_value(start), u16::from_redis_value(end))
            else {
                continue;
            };
            let host = node.first().and_then(|v| String::from_redis_value(v).ok());
            let port = node.get(1).and_then(|v| u16::from_redis_value(v).ok());
            let id = node
                .get(2)
                .and_then(|v| String::from_redis_value(v).ok())
                .unwrap_or_default();
            let (Some(host), Some(port)) = (host, port) else {
                continue;
            };
            let host = if host.is_empty() {
                "127.0.0.1".into()
            } else {
                host
            };
            let addr = format!("{host}:{port}");
            for s in start..=end.min(16383) {
                slots[s as usize] = Some(addr.clone());
            }
            match primaries.iter_mut().find(|p| p.addr == addr) {
                Some(p) => p.ranges.push((start, end)),
                None => primaries.push(Primary {
                    id,
                    addr,
                    ranges: vec![(start, end)],
                }),
            }
        }
        primaries.sort_by(|a, b| a.id.cmp(&b.id));
        self.slots = slots;
        self.primaries = primaries;
    }

    pub fn primaries(&self) -> &[Primary] {
        &self.primaries
    }

    /// The address serving `slot`.
    pub fn owner(&self, slot: u16) -> Option<&str> {
        self.slots[slot as usize].as_deref()
    }

    /// Sends `cmd` to the node serving `key`.
    pub fn query<T: FromRedisValue>(&mut self, key: &[u8], cmd: &Cmd) -> RedisResult<T> {
        if self.stale {
            self.refresh()?;
        }
        let slot = key_slot(key);
        let mut asking = false;
        let mut addr = self
            .owner(slot)
            .map(str::to_string)
            .ok_or_else(|| redis::RedisError::from((ErrorKind::ClusterDown, "slot not served")))?;
        for _ in 0..3 {
            let result = self.connection(&addr).and_then(|con| {
                if asking {
                    redis::cmd("ASKING").query::<()>(con)?;
                }
                cmd.query::<T>(con)
            });
            match result {
                Err(e) if e.kind() == ErrorKind::Moved => {
                    let Some((to, _)) = e.redirect_node() else {
                        return Err(e);
                    };
                    addr = to.to_string();
                    self.slots[slot as usize] = Some(addr.clone());
                    self.stale = true;
                    asking = false;
                }
                Err(e) if e.kind() == ErrorKind::Ask => {
                    let Some((to, _)) = e.redirect_node() else {
                        return Err(e);
                    };
                    addr = to.to_string();
                    asking = true;
                }
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                    self.connections.remove(&addr);
                    self.stale = true;
                    return Err(e);
                }
                other => return other,
            }
        }
        Err((ErrorKind::ClusterDown, "too many redirections").into())
    }

    /// Sends `cmd` to one node by address (CONFIG GET and the like).
    pub fn query_node<T: FromRedisValue>(&mut self, addr: &str, cmd: &Cmd) -> RedisResult<T> {
        let result = self.connection(addr).and_then(|con| cmd.query::<T>(con));
        if result
            .as_ref()
            .is_err_and(|e| e.is_io_error() || e.is_timeout())
        {
            self.connections.remove(addr);
        }
        result
    }
}
