//! The timed traffic's connection: pre-packed requests out, reply boundaries in.

use std::io::{Read, Write};
use std::net::TcpStream;

use redis::Value;

/// A bare RESP2 connection for everything timed. It writes pre-packed requests and only finds
/// where each reply ends, without building values; replies are decoded after the clock stops.
/// (On a 2-core machine a client that decodes a 10-field map per reply would cap ops/s below
/// what the server does, hiding the differences being measured.)
pub struct Wire {
    stream: TcpStream,
    chunk: Vec<u8>,
}

/// Length of the complete RESP2 value at the start of `b`, or None while it is incomplete.
fn resp_len(b: &[u8]) -> Option<usize> {
    let eol = b.iter().position(|&c| c == b'\n')?;
    let head = std::str::from_utf8(&b[1..eol - 1]).expect("RESP header");
    let after = eol + 1;
    match b[0] {
        b'+' | b'-' | b':' => Some(after),
        b'$' => match head.parse::<i64>().expect("bulk length") {
            n if n < 0 => Some(after),
            n => Some(after + n as usize + 2).filter(|&end| b.len() >= end),
        },
        b'*' => {
            let mut pos = after;
            for _ in 0..head.parse::<i64>().expect("array length").max(0) {
                pos += resp_len(&b[pos..])?;
            }
            Some(pos)
        }
        other => panic!("unexpected RESP2 type byte {other}"),
    }
}

impl Wire {
    pub fn connect(port: u16) -> Wire {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Wire {
            stream,
            chunk: vec![0; 64 * 1024],
        }
    }

    /// Sends `bytes` (`n` requests) and appends their `n` replies to `out`, pushing the end
    /// offset of each reply onto `ends`.
    pub fn exchange(&mut self, bytes: &[u8], n: usize, out: &mut Vec<u8>, ends: &mut Vec<usize>) {
        self.stream.write_all(bytes).expect("write");
        let want = ends.len() + n;
        let mut pos = ends.last().copied().unwrap_or(0);
        while ends.len() < want {
            if let Some(len) = resp_len(&out[pos..]) {
                pos += len;
                ends.push(pos);
                continue;
            }
            let got = self.stream.read(&mut self.chunk).expect("read");
            assert!(got > 0, "the server closed the connection");
            out.extend_from_slice(&self.chunk[..got]);
        }
    }
}

/// Decodes the replies that `Wire::exchange` collected.
pub fn decode(out: &[u8], ends: &[usize]) -> Vec<Value> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let v = redis::parse_redis_value(&out[start..end]).expect("reply");
            start = end;
            v
        })
        .collect()
}
