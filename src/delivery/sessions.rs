//! Open SMTP sessions kept between messages to the same host, as Postfix's
//! connection cache does: consecutive messages to one destination skip the
//! connect, greeting, EHLO and STARTTLS. A cached session is checked with
//! RSET before it is used again; idle or old sessions are closed with QUIT.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::connection::{self, Connection};
use super::smtp_client::SmtpClient;

use crate::config::TlsPolicy;

/// One established session, ready for MAIL FROM.
pub struct Session {
    pub client: SmtpClient<Connection>,
    opened: Instant,
    idle_since: Instant,
}

impl Session {
    pub fn new(client: SmtpClient<Connection>) -> Session {
        let now = Instant::now();
        Session {
            client,
            opened: now,
            idle_since: now,
        }
    }

    pub fn is_tls(&self) -> bool {
        connection::is_tls(self.client.stream())
    }

    /// Ends the session politely, recording how long it lasted.
    pub async fn close(self, ok: bool) {
        crate::observability::metrics::smtp_session(self.opened.elapsed(), ok);
        if ok {
            self.client.quit().await;
        }
    }
}

/// Where a session goes, and under which policy: host, port, TLS policy
/// and CA file (so that a clear or unverified session opened for one route
/// is never handed to a route that must not send in clear or unverified).
pub type Key = (String, u16, TlsPolicy, Option<PathBuf>);

/// Idle sessions by destination.
pub struct SessionCache {
    idle: Mutex<HashMap<Key, Vec<Session>>>,
    /// Close a session idle this long.
    max_idle: Duration,
    /// Close a session this old, however busy.
    max_age: Duration,
    /// Keep at most this many idle sessions per destination.
    per_key: usize,
}

impl SessionCache {
    pub fn new(max_idle: Duration, max_age: Duration, per_key: usize) -> SessionCache {
        SessionCache {
            idle: Mutex::new(HashMap::new()),
            max_idle,
            max_age,
            per_key,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Session>>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh(&self, session: &Session) -> bool {
        session.idle_since.elapsed() < self.max_idle && session.opened.elapsed() < self.max_age
    }

    /// The most recently used idle session to `key`, if any is still fresh.
    pub fn take(&self, key: &Key) -> Option<Session> {
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.lock();
            let sessions = idle.get_mut(key)?;
            let mut found = None;
            while let Some(session) = sessions.pop() {
                if self.fresh(&session) {
                    found = Some(session);
                    break;
                }
                stale.push(session);
            }
            if sessions.is_empty() {
                idle.remove(key);
            }
            found
        };
        close_all(stale);
        found
    }

    /// Keeps a session whose last transaction left it ready for the next.
    pub fn put(&self, key: Key, mut session: Session) {
        if session.opened.elapsed() >= self.max_age {
            close_all(vec![session]);
            return;
        }
        session.idle_since = Instant::now();
        let overflow = {
            let mut idle = self.lock();
            let sessions = idle.entry(key).or_default();
            sessions.push(session);
            if sessions.len() > self.per_key {
                Some(sessions.remove(0))
            } else {
                None
            }
        };
        close_all(overflow.into_iter().collect());
    }

    /// Closes sessions that have been idle too long or lived long enough.
    pub fn sweep(&self) {
        let mut stale = Vec::new();
        {
            let mut idle = self.lock();
            for sessions in idle.values_mut() {
                let (keep, old): (Vec<Session>, Vec<Session>) =
                    sessions.drain(..).partition(|s| self.fresh(s));
                *sessions = keep;
                stale.extend(old);
            }
            idle.retain(|_, sessions| !sessions.is_empty());
        }
        close_all(stale);
    }

    /// Closes every idle session (on shutdown).
    pub async fn close(&self) {
        let all: Vec<Session> = self.lock().drain().flat_map(|(_, s)| s).collect();
        for session in all {
            session.close(true).await;
        }
    }
}

/// QUITs sessions in the background; nothing waits for them.
fn close_all(sessions: Vec<Session>) {
    if sessions.is_empty() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                for session in sessions {
                    session.close(true).await;
                }
            });
        }
        Err(_) => drop(sessions),
    }
}
