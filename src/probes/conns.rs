//! The audit's one authenticated connection per node, shared by every
//! command probe (discovery, key slots, access, data, TLS configuration,
//! sessions, the latency probe's command statistics).
//!
//! A node signs one full TLS handshake for the audit's client; before
//! this, every probe opened its own connection and the node did the TLS
//! and AUTH work of each. Probes take the connection for one step (a
//! pipeline, a SCAN page) at a time, so a long step of one probe (the
//! DRYRUN sweep) delays the others by at most that step.
//!
//! Failures are shared too: when the connection cannot be made (refused,
//! silent, TLS or AUTH refused), every later probe of the node gets the
//! same failure at once instead of waiting out its own connect deadline
//! again (a dead node costs the audit one deadline, not one per probe),
//! and a refused audit password is tried once, not once per probe (one
//! `auth` entry in the node's ACL LOG). A connection that broke or timed
//! out mid-command is replaced at the next use; if that fails, the failure
//! is kept as above.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::config::{NodeAddr, Timeouts};
use crate::resp::{ConnError, RedisConn};
use crate::secret::Secret;
use crate::tls::TlsClient;

enum Slot {
    /// Never connected.
    Empty,
    /// Connected and authenticated as the audit user.
    Open(RedisConn),
    /// The last attempt to connect failed; every later use gets this.
    Failed(ConnError),
}

/// One shared connection per node (keyed by `ip:port`).
#[derive(Clone, Default)]
pub struct NodeConns {
    slots: Arc<Mutex<BTreeMap<String, Arc<AsyncMutex<Slot>>>>>,
    /// Connections opened (for tests and the per-node account).
    opened: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl std::fmt::Debug for NodeConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConns")
            .field("opened", &self.opened.lock().expect("not poisoned"))
            .finish()
    }
}

/// The node's shared connection, held for one step. Dropping it hands the
/// connection to the next probe waiting for it.
pub(crate) struct Shared {
    guard: OwnedMutexGuard<Slot>,
}

impl Deref for Shared {
    type Target = RedisConn;
    fn deref(&self) -> &RedisConn {
        match &*self.guard {
            Slot::Open(c) => c,
            _ => unreachable!("a Shared is only handed out for an open slot"),
        }
    }
}

impl DerefMut for Shared {
    fn deref_mut(&mut self) -> &mut RedisConn {
        match &mut *self.guard {
            Slot::Open(c) => c,
            _ => unreachable!("a Shared is only handed out for an open slot"),
        }
    }
}

impl NodeConns {
    /// The node's connection, authenticated as `user`: the open one, a
    /// new one where there is none or the last one broke, or the failure
    /// of the last attempt. Waiting for another probe's step is bounded by
    /// the caller's deadline (every probe runs under one); connecting is
    /// bounded by the connect and command deadlines.
    pub(crate) async fn get(
        &self,
        addr: &NodeAddr,
        tls: &TlsClient,
        timeouts: &Timeouts,
        user: &str,
        password: &Secret,
    ) -> Result<Shared, ConnError> {
        let key = addr.to_string();
        let slot = self
            .slots
            .lock()
            .expect("not poisoned")
            .entry(key.clone())
            .or_insert_with(|| Arc::new(AsyncMutex::new(Slot::Empty)))
            .clone();
        let mut guard = slot.lock_owned().await;
        match &*guard {
            Slot::Open(c) if !c.is_broken() => return Ok(Shared { guard }),
            Slot::Failed(e) => return Err(e.clone()),
            _ => {}
        }
        *self
            .opened
            .lock()
            .expect("not poisoned")
            .entry(key)
            .or_default() += 1;
        match RedisConn::connect_as(addr, tls, timeouts, user, password).await {
            Ok(c) => {
                *guard = Slot::Open(c);
                Ok(Shared { guard })
            }
            Err(e) => {
                *guard = Slot::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// How many connections were opened per node (normally one).
    #[cfg(test)]
    pub(crate) fn opened(&self) -> BTreeMap<String, u32> {
        self.opened.lock().expect("not poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that refused the connection is tried once: every later use
    /// gets the same failure at once (a dead node costs one deadline, and a
    /// refused password one ACL LOG entry, not one per probe).
    #[tokio::test]
    async fn a_failed_connection_is_tried_once_and_its_failure_shared() {
        let ctx = crate::probes::fixture_context();
        let (tls, t) = (&ctx.tls, &ctx.timeouts);
        let addr = crate::probes::closed_loopback_addr();
        let conns = NodeConns::default();
        let pw = Secret::new("pw-never-shown");
        let first = conns
            .get(&addr, tls, t, "auditor", &pw)
            .await
            .err()
            .unwrap();
        let second = conns
            .get(&addr, tls, t, "auditor", &pw)
            .await
            .err()
            .unwrap();
        assert_eq!(first.kind(), "connect", "{first}");
        assert_eq!(first, second);
        assert_eq!(conns.opened().get(&addr.to_string()), Some(&1));
        assert!(!format!("{first} {conns:?}").contains("pw-never-shown"));
    }
}
