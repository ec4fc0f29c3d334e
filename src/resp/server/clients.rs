//! The server's connection registry: what `CLIENT LIST` prints and what `CLIENT KILL` closes.
//!
//! Each connection registers when accepted and leaves when its future ends (its
//! [`ClientSlot`](super::ClientSlot) drops). An entry holds the connection's own cancellation
//! token, a child of the server's shutdown token, which every await of the connection loop
//! already watches: cancelling it closes that connection and nothing else. The `CLIENT INFO`
//! line is copied in after the connection commands that change it (`CLIENT`, `HELLO`, `AUTH`,
//! `RESET`, `MULTI`, `EXEC`, `DISCARD`; not `PING`), so a `CLIENT LIST` takes one short lock and
//! formats nothing; a `multi=` count is as of the connection's last such command.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// One registered connection.
pub(super) struct Entry {
    /// Cancelled by `CLIENT KILL`.
    pub(super) token: CancellationToken,
    /// `ip:port` of the client.
    pub(super) addr: String,
    /// `ip:port` of our listener.
    pub(super) laddr: String,
    /// The user it authenticated as (`default` until then).
    pub(super) user: String,
    /// Its `CLIENT INFO` line, newline included.
    pub(super) line: String,
    /// When it connected (`MAXAGE`).
    pub(super) since: Instant,
}

/// Every connection of one server, by id (so `CLIENT LIST` is in id order, as Redis's is).
#[derive(Default)]
pub(super) struct Registry {
    entries: Mutex<BTreeMap<u64, Entry>>,
}

/// A `CLIENT KILL` filter, as parsed.
#[derive(Default)]
pub(super) struct KillFilter {
    pub(super) id: Option<u64>,
    pub(super) addr: Option<String>,
    pub(super) laddr: Option<String>,
    pub(super) user: Option<String>,
    /// `TYPE master|replica|pubsub`: no connection here is one of those.
    pub(super) none: bool,
    pub(super) skip_me: bool,
    pub(super) max_age_secs: Option<u64>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic while holding this lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers connection `id`.
    pub(super) fn add(&self, id: u64, entry: Entry) {
        self.lock().insert(id, entry);
    }

    /// Forgets connection `id` (it has closed).
    pub(super) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Stores connection `id`'s current line and user.
    pub(super) fn update(&self, id: u64, line: String, user: &str) {
        if let Some(e) = self.lock().get_mut(&id) {
            e.line = line;
            if e.user != user {
                e.user = user.to_owned();
            }
        }
    }

    /// `CLIENT LIST`: the lines of the connections `ids` names (all when `None`).
    pub(super) fn list(&self, ids: Option<&[u64]>) -> String {
        let entries = self.lock();
        let mut out = String::new();
        for (id, e) in entries.iter() {
            if ids.is_none_or(|ids| ids.contains(id)) {
                out.push_str(&e.line);
            }
        }
        out
    }

    /// Closes every connection `f` matches, skipping `me` when the filter says so; returns how
    /// many, and whether `me` was one of them (it answers, then closes).
    pub(super) fn kill(&self, f: &KillFilter, me: u64) -> (usize, bool) {
        if f.none {
            return (0, false);
        }
        let entries = self.lock();
        let (mut n, mut killed_me) = (0, false);
        for (id, e) in entries.iter() {
            let matches = f.id.is_none_or(|x| x == *id)
                && f.addr.as_ref().is_none_or(|a| *a == e.addr)
                && f.laddr.as_ref().is_none_or(|a| *a == e.laddr)
                && f.user.as_ref().is_none_or(|u| *u == e.user)
                && f.max_age_secs
                    .is_none_or(|m| e.since.elapsed().as_secs() >= m);
            if !matches || (f.skip_me && *id == me) {
                continue;
            }
            n += 1;
            if *id == me {
                killed_me = true;
            } else {
                e.token.cancel();
            }
        }
        (n, killed_me)
    }
}
