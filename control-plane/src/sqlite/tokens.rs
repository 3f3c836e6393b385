//! Tokens and agent ids in SQLite: listing and revoking tokens, recording their last use,
//! and binding agent ids to the token that first used them.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::store::{AgentBinding, AgentClaim, Role, StoreError, TOKEN_ID_DIGITS, TokenInfo};
use crate::token::TokenHash;

/// Every token with its agent ids, sorted by project, then creation time.
pub(super) fn list(tx: &Transaction<'_>) -> Result<Vec<TokenInfo>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT hash, project, role, created_at, last_used_at FROM tokens
         ORDER BY project, created_at, hash",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (hash, project, role, created_at, last_used_at) = row?;
        out.push(TokenInfo {
            id: short_id(&hash),
            role: role_of(&project, &role)?,
            agents: agents_of(tx, &hash)?,
            project,
            created_at,
            last_used_at,
        });
    }
    Ok(out)
}

/// The role of a stored name.
pub(super) fn role_of(project: &str, role: &str) -> Result<Role, StoreError> {
    Role::from_name(role).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "a token of project `{project}` has the unknown role `{role}`"
        ))
    })
}

fn short_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_DIGITS).collect()
}

fn agents_of(tx: &Transaction<'_>, hash: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        tx.prepare_cached("SELECT agent FROM agent_ids WHERE token = ?1 ORDER BY agent")?;
    let rows = stmt.query_map([hash], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the token with this id and its agent ids; the token, `None` without one.
pub(super) fn revoke(tx: &Transaction<'_>, id: &str) -> Result<Option<TokenInfo>, StoreError> {
    let shown = id.escape_default().to_string();
    if id.len() != TOKEN_ID_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id = id.to_ascii_lowercase();
    let matching: Vec<TokenInfo> = list(tx)?.into_iter().filter(|t| t.id == id).collect();
    match matching.as_slice() {
        [] => Ok(None),
        [_] => {
            let pattern = format!("{id}%");
            tx.execute("DELETE FROM agent_ids WHERE token LIKE ?1", [&pattern])?;
            tx.execute("DELETE FROM tokens WHERE hash LIKE ?1", [&pattern])?;
            Ok(matching.into_iter().next())
        }
        _ => Err(StoreError::AmbiguousToken(shown)),
    }
}

/// Records the last use of a token.
pub(super) fn touch(tx: &Transaction<'_>, hash: &TokenHash, at: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1",
        params![hash.to_hex(), at],
    )?;
    Ok(())
}

/// Binds an agent id to a token, releasing the project's ids unused for the TTL first.
pub(super) fn bind(
    tx: &Transaction<'_>,
    claim: &AgentClaim<'_>,
) -> Result<AgentBinding, StoreError> {
    let token = claim.token.to_hex();
    tx.execute(
        "DELETE FROM agent_ids WHERE project = ?1 AND last_seen < ?2",
        params![claim.project, claim.now_us.saturating_sub(claim.ttl_us)],
    )?;
    let holder: Option<String> = tx
        .query_row(
            "SELECT token FROM agent_ids WHERE project = ?1 AND agent = ?2",
            params![claim.project, claim.agent],
            |r| r.get(0),
        )
        .optional()?;
    match holder {
        Some(holder) if holder == token => {
            tx.execute(
                "UPDATE agent_ids SET last_seen = ?3 WHERE project = ?1 AND agent = ?2",
                params![claim.project, claim.agent, claim.now_us],
            )?;
            Ok(AgentBinding::Bound)
        }
        Some(_) => Ok(AgentBinding::Taken),
        None => {
            let held: i64 = tx.query_row(
                "SELECT COUNT(*) FROM agent_ids WHERE token = ?1",
                [&token],
                |r| r.get(0),
            )?;
            let held = u64::try_from(held).unwrap_or(0);
            if held >= claim.max_per_token {
                return Ok(AgentBinding::Full(held));
            }
            tx.execute(
                "INSERT INTO agent_ids (project, agent, token, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![claim.project, claim.agent, token, claim.now_us],
            )?;
            Ok(AgentBinding::Bound)
        }
    }
}
