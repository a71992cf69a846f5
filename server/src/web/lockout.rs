//! Holding back password guessing on the sign-in page without handing strangers a way to lock
//! people out or to learn which user ids exist.
//!
//! Failed sign-ins are counted per (typed user id, address): after [`LOCK_AFTER`] failures in
//! a row, that address may not try that user id again for [`LOCK`]. The account itself is
//! never locked, so a stranger who guesses a colleague's password from their own phone locks
//! out only their own phone; the colleague at their desk signs in as always. Every address is
//! also held to the per-address limit on failures (`auth::Limiter`), which bounds guessing
//! across many user ids, and every attempt costs one argon2 verification.
//!
//! The count is kept for any typed id, whether a user has it or not, and the answers (text,
//! status and, through a decoy hash, time) are the same either way: the sign-in page does not
//! tell which ids exist. IPv6 addresses count by their /64, which one machine usually holds
//! whole. The counts live in memory: a restart forgets them, as does another process sharing
//! the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins in a row, for one user id from one address, before that address is held
/// back for [`LOCK`].
pub const LOCK_AFTER: u32 = 5;
/// How long an address is held back for a user id, and how long a failure is remembered.
pub const LOCK: Duration = Duration::from_secs(15 * 60);
/// Most (user id, address) pairs remembered; past it, expired ones are forgotten first and
/// new ones are not counted (the per-address limit still holds).
const MAX_PAIRS: usize = 100_000;

/// The failed sign-ins of one server.
#[derive(Debug, Default)]
pub struct Lockout {
    pairs: Mutex<HashMap<(String, IpAddr), Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    in_a_row: u32,
    last: Instant,
}

impl Failures {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= LOCK
    }
}

impl Lockout {
    /// Whether `ip` is held back from trying `user`.
    pub fn locked(&self, user: &str, ip: IpAddr, now: Instant) -> bool {
        let pairs = self.pairs.lock().expect("lockout lock poisoned");
        pairs
            .get(&(user.to_owned(), network(ip)))
            .is_some_and(|f| f.in_a_row >= LOCK_AFTER && !f.expired(now))
    }

    /// Counts a failed sign-in; returns whether `ip` is now held back from `user`.
    pub fn failed(&self, user: &str, ip: IpAddr, now: Instant) -> bool {
        let mut pairs = self.pairs.lock().expect("lockout lock poisoned");
        if pairs.len() >= MAX_PAIRS {
            pairs.retain(|_, f| !f.expired(now));
        }
        let key = (user.to_owned(), network(ip));
        if pairs.len() >= MAX_PAIRS && !pairs.contains_key(&key) {
            return false;
        }
        let f = pairs.entry(key).or_insert(Failures {
            in_a_row: 0,
            last: now,
        });
        if f.expired(now) {
            f.in_a_row = 0;
        }
        f.in_a_row += 1;
        f.last = now;
        f.in_a_row >= LOCK_AFTER
    }

    /// A successful sign-in: the count of this pair starts again.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        let mut pairs = self.pairs.lock().expect("lockout lock poisoned");
        pairs.remove(&(user.to_owned(), network(ip)));
    }
}

/// The address as counted: an IPv4 address whole, an IPv6 address by its /64.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_failing_address_is_held_back_and_only_for_a_while() {
        let lockout = Lockout::default();
        let (stranger, owner): (IpAddr, IpAddr) =
            ("10.0.0.9".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let t = Instant::now();
        for i in 1..=LOCK_AFTER {
            assert_eq!(lockout.failed("dewi", stranger, t), i == LOCK_AFTER);
        }
        assert!(lockout.locked("dewi", stranger, t));
        assert!(!lockout.locked("dewi", owner, t), "the owner's desk is not");
        assert!(!lockout.locked("sri", stranger, t), "nor another id");
        assert!(!lockout.locked("dewi", stranger, t + LOCK));
        // One more failure after the lock ran out starts a new count.
        assert!(!lockout.failed("dewi", stranger, t + LOCK));
    }

    #[test]
    fn an_ipv6_machine_counts_as_one_address() {
        let lockout = Lockout::default();
        let t = Instant::now();
        for i in 0..LOCK_AFTER {
            let ip: IpAddr = format!("2001:db8:1:2::{}", i + 1).parse().unwrap();
            lockout.failed("dewi", ip, t);
        }
        assert!(lockout.locked("dewi", "2001:db8:1:2::ffff".parse().unwrap(), t));
        assert!(!lockout.locked("dewi", "2001:db8:1:3::1".parse().unwrap(), t));
    }

    #[test]
    fn a_success_starts_the_count_again() {
        let lockout = Lockout::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t = Instant::now();
        for _ in 1..LOCK_AFTER {
            lockout.failed("dewi", ip, t);
        }
        lockout.succeeded("dewi", ip);
        assert!(!lockout.failed("dewi", ip, t));
    }
}
