//! Speaks a monitor's [`Recipe`] over a ready connection: each protocol's first words,
//! the answer judged (serving, unavailable, asking for credentials, not this protocol),
//! and the facts it tells recorded. Each recipe lives with its protocol, in
//! [`super::protocol`]; this module picks it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Conn;
use super::protocol::{ftp, imap, memcached, mongodb, mysql, pop3, postgres, redis, smtp, ssh};
pub(crate) use super::speak::Context;
use super::speak::{Learned, Outcome};
use monitor_spec::Recipe;

/// Speaks `recipe` on `s`, recording what it learns in `learned`.
pub(crate) async fn speak<S: AsyncRead + AsyncWrite + Unpin>(
    recipe: &Recipe,
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    match recipe {
        Recipe::Redis {
            password_env,
            username,
        } => redis::recipe(s, cx, password_env.as_deref(), username.as_deref(), learned).await,
        Recipe::Memcached => memcached::recipe(s, cx, learned).await,
        Recipe::Ssh => ssh::recipe(s, cx, learned).await,
        Recipe::Smtp { helo } => smtp::recipe(s, cx, helo, learned).await,
        Recipe::Ftp => ftp::recipe(s, cx, learned).await,
        Recipe::Imap => imap::recipe(s, cx, learned).await,
        Recipe::Pop3 => pop3::recipe(s, cx, learned).await,
        Recipe::Postgres {
            user,
            database,
            login,
        } => {
            let database = database.as_deref().unwrap_or(user);
            postgres::recipe(s, cx, user, database, login.as_ref(), learned).await
        }
        Recipe::Mysql => mysql::recipe(s, cx, learned).await,
        Recipe::Mongodb => mongodb::recipe(s, cx, learned).await,
    }
}
