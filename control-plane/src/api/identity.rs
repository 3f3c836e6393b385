//! Who the agents are: each agent id is bound to the token that first used it (in the
//! store, so that it holds across restarts), a token holds at most
//! `--max-agents-per-token` ids, and ids unused for `--agent-id-ttl` are released. A cache
//! of the bindings seen lets a heartbeat skip the database write but every
//! [`BIND_REFRESH`]; the last use of each token is written at most every [`TOUCH_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::store::{AgentBinding, AgentClaim, Store};
use crate::token::TokenHash;

/// The longest time between two writes of a bound id's last use (a quarter of the TTL
/// when that is shorter).
pub(super) const BIND_REFRESH: Duration = Duration::from_secs(60);
/// The longest time between two writes of a token's last use.
pub(super) const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Cached bindings kept before the stale ones are dropped.
const MAX_CACHED: usize = 65_536;

/// The caller of an agent route: the token's project and the token.
#[derive(Debug, Clone)]
pub(super) struct AgentCaller {
    pub(super) project: String,
    pub(super) token: TokenHash,
}

/// (project, agent id) → the token bound to it, and when that was last written.
type Bindings = HashMap<(String, String), ([u8; 32], Instant)>;

/// The bindings and token uses recently written.
#[derive(Debug, Default)]
pub(super) struct Identities {
    /// The bindings written recently.
    bound: Mutex<Bindings>,
    /// Token hash → when its use was last written.
    touched: Mutex<HashMap<[u8; 32], Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Identities {
    /// Records the use of a token, writing it in the background at most every
    /// [`TOUCH_EVERY`]; a failed write is logged, never the caller's failure.
    pub(super) fn used(&self, store: &Arc<dyn Store>, token: &TokenHash) {
        let now = Instant::now();
        {
            let mut touched = lock(&self.touched);
            if touched
                .get(&token.0)
                .is_some_and(|at| now.saturating_duration_since(*at) < TOUCH_EVERY)
            {
                return;
            }
            if touched.len() >= MAX_CACHED {
                touched.retain(|_, at| now.saturating_duration_since(*at) < TOUCH_EVERY);
            }
            touched.insert(token.0, now);
        }
        let (store, token) = (Arc::clone(store), *token);
        let at = crate::status::rfc3339_us(crate::status::unix_us(time::OffsetDateTime::now_utc()));
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.touch_token(&token, &at) {
                tracing::warn!(error = %e, "recording a token's use failed");
            }
        });
    }

    /// Binds `agent` to the caller's token, releasing ids unused for `ttl`: 403 when
    /// another token holds it or the token already holds `max` ids; 507 when the database
    /// is full.
    pub(super) async fn bind(
        &self,
        store: &Arc<dyn Store>,
        caller: &AgentCaller,
        agent: &str,
        ttl: Duration,
        max: u64,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        let key = (caller.project.clone(), agent.to_owned());
        let refresh = (ttl / 4).min(BIND_REFRESH);
        let fresh = lock(&self.bound).get(&key).is_some_and(|(token, at)| {
            *token == caller.token.0 && now.saturating_duration_since(*at) < refresh
        });
        if fresh {
            return Ok(());
        }
        let store = Arc::clone(store);
        let (project, token) = (caller.project.clone(), caller.token);
        let name = agent.to_owned();
        let ttl_us = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        let binding = tokio::task::spawn_blocking(move || {
            store.bind_agent(&AgentClaim {
                project: &project,
                agent: &name,
                token: &token,
                now_us: crate::status::unix_us(time::OffsetDateTime::now_utc()),
                ttl_us,
                max_per_token: max,
            })
        })
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))??;
        let mut bound = lock(&self.bound);
        match binding {
            AgentBinding::Bound => {
                if bound.len() >= MAX_CACHED {
                    bound.retain(|_, (_, at)| now.saturating_duration_since(*at) < refresh);
                }
                if bound.insert(key, (caller.token.0, now)).is_none() {
                    tracing::info!(project = %caller.project, %agent, "agent id bound to its token");
                }
                Ok(())
            }
            AgentBinding::Taken => {
                bound.remove(&key);
                tracing::warn!(project = %caller.project, %agent, "agent id refused: another token holds it");
                Err(ApiError::AgentIdTaken(agent.to_owned()))
            }
            AgentBinding::Full(held) => {
                tracing::warn!(project = %caller.project, %agent, held, "agent id refused: the token holds the most ids allowed");
                Err(ApiError::TooManyAgents { held, max })
            }
        }
    }
}
