//! INFO replies: `name:value` lines, some of whose values are `key=value,...` entries.

/// The value of `name` in an INFO reply.
pub fn info_value<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// One entry of a value such as `calls=3,usec=12,usec_per_call=4.00`.
pub fn info_entry<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    value
        .split(',')
        .find_map(|entry| entry.strip_prefix(key)?.strip_prefix('='))
}

/// The server's name and version from INFO server. Valkey also reports the `redis_version` it
/// is compatible with, so its own comes first.
pub fn server_version(info_server: &str) -> Option<(&'static str, &str)> {
    ["valkey", "redis"].into_iter().find_map(|name| {
        let version = info_value(info_server, &format!("{name}_version"))?;
        Some((name, version))
    })
}
