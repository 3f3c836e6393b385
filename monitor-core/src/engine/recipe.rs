//! Speaks a monitor's [`Recipe`] over a ready connection: each protocol's first words,
//! the answer judged (serving, unavailable, asking for credentials, not this protocol),
//! and the facts it tells recorded. Each recipe lives with its protocol, in
//! [`super::protocol`]; this module picks it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Conn;
use super::protocol::{ftp, imap, memcached, mongodb, mysql, pop3, postgres, redis, smtp, ssh};
pub(crate) use super::speak::Context;
use super::speak::{Learned, Outcome, said};
use monitor_spec::Recipe;
use monitor_spec::result::ErrorKind;

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
            role: false,
        } => redis::recipe(s, cx, password_env.as_deref(), username.as_deref(), learned).await,
        Recipe::Memcached { key: None } => memcached::recipe(s, cx, learned).await,
        Recipe::Ssh => ssh::recipe(s, cx, learned).await,
        Recipe::Smtp { helo, login: None } => smtp::recipe(s, cx, helo, learned).await,
        Recipe::Ftp { login: None } => ftp::recipe(s, cx, learned).await,
        Recipe::Imap { login: None } => imap::recipe(s, cx, learned).await,
        Recipe::Pop3 { login: None } => pop3::recipe(s, cx, learned).await,
        Recipe::Postgres {
            user,
            database,
            login,
        } => {
            let database = database.as_deref().unwrap_or(user);
            postgres::recipe(s, cx, user, database, login.as_ref(), learned).await
        }
        Recipe::Mysql { login } => mysql::recipe(s, cx, login.as_ref(), learned).await,
        Recipe::Mongodb { login: None } => mongodb::recipe(s, cx, learned).await,
        _ => Err(said(
            cx,
            ErrorKind::Config,
            format!("the {} recipe cannot log in yet", recipe.name()),
            Vec::new(),
        )),
    }
}
