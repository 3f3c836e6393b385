//! Speaks a monitor's [`Recipe`] over a ready connection: each protocol's first words,
//! the answer judged (serving, unavailable, asking for credentials, not this protocol),
//! and the facts it tells recorded. Each recipe lives with its protocol, in
//! [`super::protocol`]; this module picks it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Conn;
use super::protocol::{
    ftp, imap, ldap_login, memcached, mongodb, mongodb_login, mysql, pop3, postgres, redis, smtp,
    ssh,
};
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
            role,
        } => {
            let (password_env, username) = (password_env.as_deref(), username.as_deref());
            redis::recipe(s, cx, password_env, username, *role, learned).await
        }
        Recipe::Memcached { key } => memcached::recipe(s, cx, key.as_deref(), learned).await,
        Recipe::Ssh => ssh::recipe(s, cx, learned).await,
        Recipe::Smtp { helo, login } => smtp::recipe(s, cx, helo, login.as_ref(), learned).await,
        Recipe::Ftp { login } => ftp::recipe(s, cx, login.as_ref(), learned).await,
        Recipe::Imap { login } => imap::recipe(s, cx, login.as_ref(), learned).await,
        Recipe::Pop3 { login } => pop3::recipe(s, cx, login.as_ref(), learned).await,
        Recipe::Postgres {
            user,
            database,
            login,
        } => {
            let database = database.as_deref().unwrap_or(user);
            postgres::recipe(s, cx, user, database, login.as_ref(), learned).await
        }
        Recipe::Ldap { login } => ldap_login::recipe(s, cx, login.as_ref(), learned).await,
        Recipe::Mysql { login } => mysql::recipe(s, cx, login.as_ref(), learned).await,
        Recipe::Mongodb { login: None } => mongodb::recipe(s, cx, learned).await,
        Recipe::Mongodb { login: Some(login) } => {
            mongodb_login::recipe(s, cx, login, learned).await
        }
    }
}
