//! What replicas of the control plane share on PostgreSQL: the agents' leases (table
//! `agent_leases`, a migration of [`super::schema`]) and change notices through
//! `LISTEN/NOTIFY` on the channel [`CHANNEL`], whose payload is a project's name.
//!
//! Each store listens on one connection of its own, outside the pool, opened at the first
//! [`super::PgStore`] `subscribe` and reopened after a failure with a backoff from 1 s
//! doubling to 30 s; each time it listens (again) it hands subscribers an empty name, as
//! notices may have been missed meanwhile.

use std::sync::OnceLock;
use std::time::Duration;

use deadpool_postgres::Client;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::{AgentLease, LEASE_KEEP_US, MAX_LEASES, StoreError};

/// The replicas' tables: one lease per agent of a project, as the replica serving it
/// last wrote it (times in unix microseconds).
pub(super) const SCHEMA: &str = r#"CREATE TABLE agent_leases (
    project TEXT COLLATE "C" NOT NULL,
    agent TEXT COLLATE "C" NOT NULL,
    location TEXT NOT NULL,
    seen_us BIGINT NOT NULL,
    work_since_us BIGINT,
    last_result_us BIGINT,
    PRIMARY KEY (project, agent)
);
CREATE INDEX agent_leases_by_seen ON agent_leases (project, seen_us);"#;

/// The `LISTEN/NOTIFY` channel of the changes of projects' assignments.
pub const CHANNEL: &str = "control_plane_changes";

/// Notices a subscriber may fall behind by before it skips some (`Lagged`).
const QUEUE: usize = 1024;

/// The longest wait before listening again after a failure.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Upserts leases; of two writes the later seen sets the location and the work, and the
/// times only move forward.
const RENEW: &str = r#"INSERT INTO agent_leases AS l
        (project, agent, location, seen_us, work_since_us, last_result_us)
    SELECT $1, u.agent, u.location, u.seen_us, u.work_since_us, u.last_result_us
    FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])
        AS u(agent, location, seen_us, work_since_us, last_result_us)
    ON CONFLICT (project, agent) DO UPDATE SET
        location = CASE WHEN EXCLUDED.seen_us >= l.seen_us
            THEN EXCLUDED.location ELSE l.location END,
        work_since_us = CASE WHEN EXCLUDED.seen_us >= l.seen_us
            THEN EXCLUDED.work_since_us ELSE l.work_since_us END,
        seen_us = GREATEST(l.seen_us, EXCLUDED.seen_us),
        last_result_us = GREATEST(l.last_result_us, EXCLUDED.last_result_us)"#;

/// Records `leases` (any number, [`MAX_LEASES`] per statement, in agent order so that
/// replicas writing at once take the rows' locks in one order), then deletes the
/// project's leases not seen for [`LEASE_KEEP_US`] before the latest of them.
pub(super) async fn renew(
    client: &Client,
    project: &str,
    leases: &[AgentLease],
) -> Result<(), StoreError> {
    let mut sorted: Vec<&AgentLease> = leases.iter().collect();
    // One row per agent (a statement may not update a row twice): the latest seen.
    sorted.sort_by(|a, b| a.agent.cmp(&b.agent).then(b.seen_us.cmp(&a.seen_us)));
    sorted.dedup_by(|later, first| later.agent == first.agent);
    let Some(latest) = sorted.iter().map(|l| l.seen_us).max() else {
        return Ok(());
    };
    let renew = client.prepare_cached(RENEW).await?;
    for chunk in sorted.chunks(MAX_LEASES) {
        let agents: Vec<&str> = chunk.iter().map(|l| l.agent.as_str()).collect();
        let locations: Vec<&str> = chunk.iter().map(|l| l.location.as_str()).collect();
        let seen: Vec<i64> = chunk.iter().map(|l| l.seen_us).collect();
        let work: Vec<Option<i64>> = chunk.iter().map(|l| l.work_since_us).collect();
        let results: Vec<Option<i64>> = chunk.iter().map(|l| l.last_result_us).collect();
        client
            .execute(
                &renew,
                &[&project, &agents, &locations, &seen, &work, &results],
            )
            .await?;
    }
    let prune = client
        .prepare_cached("DELETE FROM agent_leases WHERE project = $1 AND seen_us < $2")
        .await?;
    client
        .execute(&prune, &[&project, &latest.saturating_sub(LEASE_KEEP_US)])
        .await?;
    Ok(())
}

/// The project's leases seen at or after `since_us`, by agent, at most [`MAX_LEASES`].
pub(super) async fn leases(
    client: &Client,
    project: &str,
    since_us: i64,
) -> Result<Vec<AgentLease>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT agent, location, seen_us, work_since_us, last_result_us FROM agent_leases
             WHERE project = $1 AND seen_us >= $2 ORDER BY agent LIMIT $3",
        )
        .await?;
    let limit = i64::try_from(MAX_LEASES).unwrap_or(i64::MAX);
    let rows = client.query(&stmt, &[&project, &since_us, &limit]).await?;
    rows.iter()
        .map(|r| {
            Ok(AgentLease {
                agent: r.try_get(0)?,
                location: r.try_get(1)?,
                seen_us: r.try_get(2)?,
                work_since_us: r.try_get(3)?,
                last_result_us: r.try_get(4)?,
            })
        })
        .collect()
}

/// Announces a change of `project` to every listening store (`pg_notify`).
pub(super) async fn notify(client: &Client, project: &str) -> Result<(), StoreError> {
    let stmt = client.prepare_cached("SELECT pg_notify($1, $2)").await?;
    client.execute(&stmt, &[&CHANNEL, &project]).await?;
    Ok(())
}

/// The store's listening side: how to connect, and the subscribers' channel once the
/// listener runs.
pub(super) struct Notices {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    shown: String,
    sender: OnceLock<broadcast::Sender<String>>,
}

impl Notices {
    /// Listens (from the first [`Notices::subscribe`]) with `config` and `tls`; `shown`
    /// is the URL as logs show it.
    pub(super) fn new(
        config: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        shown: String,
    ) -> Notices {
        Notices {
            config,
            tls,
            shown,
            sender: OnceLock::new(),
        }
    }

    /// A receiver of the notices from now on; the first call starts the listener on
    /// `runtime`.
    pub(super) fn subscribe(
        &self,
        runtime: &tokio::runtime::Handle,
    ) -> broadcast::Receiver<String> {
        let mut started = false;
        let sender = self.sender.get_or_init(|| {
            started = true;
            broadcast::channel(QUEUE).0
        });
        let receiver = sender.subscribe();
        if started {
            runtime.spawn(listen(
                self.config.clone(),
                self.tls.clone(),
                sender.clone(),
                self.shown.clone(),
            ));
        }
        receiver
    }
}

/// Listens on [`CHANNEL`] and hands each notice's payload to `sender`, reconnecting with
/// backoff, until the store's runtime shuts down.
async fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    sender: broadcast::Sender<String>,
    shown: String,
) {
    let mut backoff = Duration::from_secs(1);
    let mut failing: Option<String> = None;
    loop {
        let why =
            match listen_once(&config, &tls, &sender, &shown, &mut failing, &mut backoff).await {
                Ok(()) => "the server closed the connection".to_owned(),
                Err(e) => e,
            };
        if failing.as_deref() != Some(why.as_str()) {
            tracing::warn!(
                url = %shown,
                error = %why,
                "not listening for other replicas' changes; retrying with backoff up to 30 s (meanwhile they are read every second)"
            );
            failing = Some(why);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One listening connection, until it fails; once it listens, the backoff starts over.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    sender: &broadcast::Sender<String>,
    shown: &str,
    failing: &mut Option<String>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let describe = |e: tokio_postgres::Error| StoreError::Postgres(e).to_string();
    let (client, mut connection) = config.connect(tls.clone()).await.map_err(describe)?;
    let command = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&command);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done.map_err(describe)?;
                listening = true;
                *backoff = Duration::from_secs(1);
                if failing.take().is_some() {
                    tracing::info!(url = %shown, "listening for other replicas' changes again");
                }
                // Notices may have been missed while not listening.
                let _ = sender.send(String::new());
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = sender.send(n.payload().to_owned());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(describe(e)),
                None => return Ok(()),
            },
        }
    }
}
