//! Loaded with `LD_PRELOAD`, shifts the process's wall clock (`gettimeofday`, `time`,
//! `clock_gettime` of the realtime clocks) by `SEATQ_CLOCK_OFFSET_US` microseconds (signed);
//! monotonic clocks are untouched, so timers keep their pace. The tests run cluster nodes whose
//! clocks disagree by a few milliseconds, as machines' do (`seatq_testkit::clock`).
//!
//! Why not libfaketime: it finds the real functions with `dlsym`, which allocates, and jemalloc
//! (Debian's redis-server is built with it) reads the clock while it initialises, so the two
//! recurse and the server never starts (libfaketime issue #130). Here the clocks are read with
//! the raw system call and the offset from `getenv`, neither of which allocates.

use std::ffi::CStr;
use std::sync::atomic::{AtomicI64, Ordering};

use libc::{c_int, c_void, clockid_t, time_t, timespec, timeval};

/// The offset in µs; `UNSET` until the first call reads the environment.
static OFFSET_US: AtomicI64 = AtomicI64::new(UNSET);
const UNSET: i64 = i64::MIN;

fn offset_us() -> i64 {
    let cached = OFFSET_US.load(Ordering::Relaxed);
    if cached != UNSET {
        return cached;
    }
    // SAFETY: getenv with a NUL-terminated name; the value is only read here.
    let value = unsafe { libc::getenv(c"SEATQ_CLOCK_OFFSET_US".as_ptr()) };
    let offset = if value.is_null() {
        0
    } else {
        // SAFETY: getenv returns a NUL-terminated string.
        parse(unsafe { CStr::from_ptr(value) }.to_bytes())
    };
    OFFSET_US.store(offset, Ordering::Relaxed);
    offset
}

/// A signed decimal integer; anything else is no offset (the tests check the clock they get).
fn parse(text: &[u8]) -> i64 {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

fn shift(ts: &mut timespec) {
    let ns = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128 + offset_us() as i128 * 1_000;
    ts.tv_sec = ns.div_euclid(1_000_000_000) as time_t;
    ts.tv_nsec = ns.rem_euclid(1_000_000_000) as _;
}

fn is_wall_clock(clock: clockid_t) -> bool {
    matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI
    )
}

/// # Safety
/// As libc's `clock_gettime`.
#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clock: clockid_t, ts: *mut timespec) -> c_int {
    let r = libc::syscall(libc::SYS_clock_gettime, clock, ts) as c_int;
    if r == 0 && is_wall_clock(clock) && !ts.is_null() {
        shift(&mut *ts);
    }
    r
}

/// # Safety
/// As libc's `gettimeofday`.
#[no_mangle]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, _tz: *mut c_void) -> c_int {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let r = clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    if r == 0 && !tv.is_null() {
        (*tv).tv_sec = ts.tv_sec;
        (*tv).tv_usec = (ts.tv_nsec / 1_000) as _;
    }
    r
}

/// # Safety
/// As libc's `time`.
#[no_mangle]
pub unsafe extern "C" fn time(out: *mut time_t) -> time_t {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    if !out.is_null() {
        *out = ts.tv_sec;
    }
    ts.tv_sec
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn offsets_parse_or_are_zero() {
        assert_eq!(parse(b"5000"), 5_000);
        assert_eq!(parse(b"+5000"), 5_000);
        assert_eq!(parse(b"-5000"), -5_000);
        for bad in [&b""[..], b"-", b"5ms", b"1e3", b" 5", b"9999999999999999"] {
            assert_eq!(parse(bad), 0, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
