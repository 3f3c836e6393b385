//! Tokens and agent ids on PostgreSQL: storing, listing and revoking tokens, recording
//! their last use, and binding agent ids to the token that first used them.

use deadpool_postgres::{ClientWrapper, Transaction};

use super::{ensure_project, lock_key, now};
use crate::store::{
    AgentBinding, AgentClaim, Role, StoreError, TOKEN_ID_DIGITS, TokenInfo, TokenOwner,
};
use crate::token::TokenHash;

/// Stores a token, creating its project if needed.
pub(super) async fn create(
    tx: &Transaction<'_>,
    project: &str,
    hash: &TokenHash,
    role: Role,
) -> Result<(), StoreError> {
    ensure_project(tx, project).await?;
    tx.execute(
        "INSERT INTO tokens (hash, project, created_at, role) VALUES ($1, $2, $3, $4)",
        &[&hash.to_hex(), &project, &now(), &role.as_str()],
    )
    .await?;
    Ok(())
}

/// The owner of a token, compared in constant time after the lookup by hash. One
/// statement, outside a transaction: every request asks it.
pub(super) async fn owner(
    client: &ClientWrapper,
    hash: &TokenHash,
) -> Result<Option<TokenOwner>, StoreError> {
    let hex = hash.to_hex();
    let stmt = client
        .prepare_cached("SELECT hash, project, role FROM tokens WHERE hash = $1")
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&hex]).await? else {
        return Ok(None);
    };
    let stored: String = row.get(0);
    if !crate::token::ct_eq(hex.as_bytes(), stored.as_bytes()) {
        return Ok(None);
    }
    let project: String = row.get(1);
    let role = role_of(&project, row.get(2))?;
    Ok(Some(TokenOwner { project, role }))
}

/// Every token with its agent ids, sorted by project, then creation time.
pub(super) async fn list(tx: &Transaction<'_>) -> Result<Vec<TokenInfo>, StoreError> {
    let rows = tx
        .query(
            "SELECT t.hash, t.project, t.role, t.created_at, t.last_used_at,
                    COALESCE(array_agg(a.agent ORDER BY a.agent)
                        FILTER (WHERE a.agent IS NOT NULL), '{}')
             FROM tokens t LEFT JOIN agent_ids a ON a.token = t.hash
             GROUP BY t.hash
             ORDER BY t.project, t.created_at, t.hash",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let hash: String = row.get(0);
        let project: String = row.get(1);
        out.push(TokenInfo {
            id: hash.chars().take(TOKEN_ID_DIGITS).collect(),
            role: role_of(&project, row.get(2))?,
            project,
            created_at: row.get(3),
            last_used_at: row.get(4),
            agents: row.get(5),
        });
    }
    Ok(out)
}

fn role_of(project: &str, role: &str) -> Result<Role, StoreError> {
    Role::from_name(role).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "a token of project `{project}` has the unknown role `{role}`"
        ))
    })
}

/// Deletes the token with this id and its agent ids; the token, `None` without one.
pub(super) async fn revoke(
    tx: &Transaction<'_>,
    id: &str,
) -> Result<Option<TokenInfo>, StoreError> {
    let shown = id.escape_default().to_string();
    if id.len() != TOKEN_ID_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id = id.to_ascii_lowercase();
    let matching: Vec<TokenInfo> = list(tx).await?.into_iter().filter(|t| t.id == id).collect();
    match matching.as_slice() {
        [] => Ok(None),
        [_] => {
            let pattern = format!("{id}%");
            tx.execute("DELETE FROM agent_ids WHERE token LIKE $1", &[&pattern])
                .await?;
            tx.execute("DELETE FROM tokens WHERE hash LIKE $1", &[&pattern])
                .await?;
            Ok(matching.into_iter().next())
        }
        _ => Err(StoreError::AmbiguousToken(shown)),
    }
}

/// Records the last use of a token.
pub(super) async fn touch(
    tx: &Transaction<'_>,
    hash: &TokenHash,
    at: &str,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached("UPDATE tokens SET last_used_at = $2 WHERE hash = $1")
        .await?;
    tx.execute(&stmt, &[&hash.to_hex(), &at]).await?;
    Ok(())
}

/// Binds an agent id to a token, releasing the project's ids unused for the TTL first.
/// The project's agent-id lock serialises binds of one project across replicas.
pub(super) async fn bind(
    tx: &Transaction<'_>,
    claim: &AgentClaim<'_>,
) -> Result<AgentBinding, StoreError> {
    let token = claim.token.to_hex();
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key("agent-ids", claim.project)],
    )
    .await?;
    tx.execute(
        "DELETE FROM agent_ids WHERE project = $1 AND last_seen < $2",
        &[&claim.project, &claim.now_us.saturating_sub(claim.ttl_us)],
    )
    .await?;
    let holder: Option<String> = tx
        .query_opt(
            "SELECT token FROM agent_ids WHERE project = $1 AND agent = $2",
            &[&claim.project, &claim.agent],
        )
        .await?
        .map(|r| r.get(0));
    match holder {
        Some(holder) if holder == token => {
            tx.execute(
                "UPDATE agent_ids SET last_seen = $3 WHERE project = $1 AND agent = $2",
                &[&claim.project, &claim.agent, &claim.now_us],
            )
            .await?;
            Ok(AgentBinding::Bound)
        }
        Some(_) => Ok(AgentBinding::Taken),
        None => {
            let held: i64 = tx
                .query_one("SELECT COUNT(*) FROM agent_ids WHERE token = $1", &[&token])
                .await?
                .get(0);
            let held = u64::try_from(held).unwrap_or(0);
            if held >= claim.max_per_token {
                return Ok(AgentBinding::Full(held));
            }
            tx.execute(
                "INSERT INTO agent_ids (project, agent, token, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $4)",
                &[&claim.project, &claim.agent, &token, &claim.now_us],
            )
            .await?;
            Ok(AgentBinding::Bound)
        }
    }
}
