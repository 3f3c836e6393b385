//! The rules of a monitor's recipe and its login: STARTTLS and direct TLS where the
//! protocol has them, the recipe's own fields, and the login fields each recipe reads.

use crate::spec::wire_name;
use crate::spec::{TcpMonitor, TlsMode};
use crate::validate::{Validator, check_host};

impl Validator {
    pub(crate) fn recipe(&mut self, m: &TcpMonitor) {
        let Some(recipe) = &m.recipe else {
            return;
        };
        let name = recipe.name();
        match (m.tls.mode, recipe.starttls(), m.tls.starttls) {
            (TlsMode::Starttls, None, _) => self.err(
                "tls.mode",
                format!("`starttls` is not possible with recipe `{name}`: the protocol has no STARTTLS; use tls.mode `direct` or `none`"),
            ),
            (TlsMode::Starttls, Some(own), Some(set)) if own != set => self.err(
                "tls.starttls",
                format!(
                    "`{}` does not match recipe `{name}`; use `{}` or remove tls.starttls",
                    wire_name(&set),
                    wire_name(&own)
                ),
            ),
            (TlsMode::Direct, _, _) if !recipe.allows_direct_tls() => self.err(
                "tls.mode",
                format!("`direct` is not possible with recipe `{name}`: the protocol never runs over TLS; use tls.mode `none`"),
            ),
            _ => {}
        }
        let env_name = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let word = |s: &str| !s.is_empty() && s.len() <= 63 && !s.contains(['\0', '\r', '\n']);
        match recipe {
            crate::recipe::Recipe::Redis {
                password_env,
                username,
                ..
            } => {
                if let Some(var) = password_env.as_deref().filter(|v| !env_name(v)) {
                    self.err(
                        "recipe.password_env",
                        format!("`{var}` is not an environment variable name: use letters, digits and `_`, not starting with a digit"),
                    );
                }
                if username.is_some() && password_env.is_none() {
                    self.err(
                        "recipe.username",
                        "needs recipe.password_env: Redis AUTH takes a user with a password",
                    );
                }
                if let Some(user) = username.as_deref().filter(|u| !word(u) || u.contains(' ')) {
                    self.err(
                        "recipe.username",
                        format!(
                            "`{}` must be 1 to 63 characters without spaces or line breaks",
                            user.escape_debug()
                        ),
                    );
                }
            }
            crate::recipe::Recipe::Postgres { user, database, .. } => {
                if !word(user) {
                    self.err(
                        "recipe.user",
                        format!(
                            "`{}` must be 1 to 63 characters without NUL or line breaks",
                            user.escape_debug()
                        ),
                    );
                }
                if let Some(db) = database.as_deref().filter(|d| !word(d)) {
                    self.err(
                        "recipe.database",
                        format!(
                            "`{}` must be 1 to 63 characters without NUL or line breaks",
                            db.escape_debug()
                        ),
                    );
                }
            }
            crate::recipe::Recipe::Smtp { helo, .. } => {
                if let Err(why) = check_host(helo) {
                    self.err("recipe.helo", why);
                }
            }
            crate::recipe::Recipe::Memcached { key: Some(key) }
                if key.is_empty()
                    || key.len() > crate::login::MAX_MEMCACHED_KEY_BYTES
                    || key.bytes().any(|b| b <= b' ' || b == 0x7f) =>
            {
                self.err(
                        "recipe.key",
                        format!(
                            "`{}` is not a memcached key: 1 to {} bytes without spaces or control characters",
                            key.escape_debug(),
                            crate::login::MAX_MEMCACHED_KEY_BYTES
                        ),
                    );
            }
            _ => {}
        }
        if let Some(login) = recipe.login() {
            self.login(login, &env_name);
            self.login_fits(m, recipe, login);
        }
    }

    /// What a recipe's login must hold for that recipe: a user where the protocol names
    /// one, only the fields it reads, a password where it cannot log in without one, and
    /// TLS where the password travels as it is.
    fn login_fits(
        &mut self,
        m: &TcpMonitor,
        recipe: &crate::recipe::Recipe,
        login: &crate::login::Login,
    ) {
        use crate::recipe::Recipe;
        let name = recipe.name();
        let line = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && !s.contains(['\0', '\r', '\n'])
        };
        match (recipe, &login.user) {
            (Recipe::Postgres { .. }, Some(_)) => self.err(
                "recipe.login.user",
                "postgres names its user on the recipe: write postgres(user = \"...\") and leave it out of the login",
            ),
            (Recipe::Ldap { .. }, None) if login.has_password() => self.err(
                "recipe.login.user",
                "is required with a password: name the DN to bind as (`cn=monitor,dc=example,dc=org`)",
            ),
            (Recipe::Ldap { .. }, Some(_)) if !login.has_password() => self.err(
                "recipe.login.user",
                "a DN without a password is an unauthenticated bind, which servers refuse: name where the password is read, or leave out user for an anonymous bind",
            ),
            (Recipe::Postgres { .. } | Recipe::Ldap { .. }, _) => {}
            (_, None) => self.err(
                "recipe.login.user",
                format!("is required: name the user `{name}` logs in as"),
            ),
            _ => {}
        }
        if let Some(user) = login.user.as_deref().filter(|u| !line(u, 1024)) {
            self.err(
                "recipe.login.user",
                format!(
                    "`{}` must be 1 to 1024 bytes without NUL or line breaks",
                    user.escape_debug()
                ),
            );
        }
        match (recipe, login.database.as_deref()) {
            (Recipe::Mysql { .. } | Recipe::Mongodb { .. }, Some(db)) if !line(db, 64) => self.err(
                "recipe.login.database",
                format!("`{}` must be 1 to 64 bytes without NUL or line breaks", db.escape_debug()),
            ),
            (Recipe::Mysql { .. } | Recipe::Mongodb { .. }, _) | (_, None) => {}
            (Recipe::Postgres { .. }, Some(_)) => self.err(
                "recipe.login.database",
                "postgres names its database on the recipe: write postgres(database = \"...\") and leave it out of the login",
            ),
            (_, Some(_)) => self.err(
                "recipe.login.database",
                format!("`{name}` has no database to choose: remove it"),
            ),
        }
        if login.query.is_some()
            && !matches!(
                recipe,
                Recipe::Postgres { .. }
                    | Recipe::Mysql { .. }
                    | Recipe::Imap { .. }
                    | Recipe::Ldap { .. }
            )
        {
            self.err(
                "recipe.login.query",
                format!("`{name}` runs no query after its login: remove it (postgres and mysql run SQL, imap selects a mailbox, ldap searches a DN)"),
            );
        }
        let needs_password = matches!(
            recipe,
            Recipe::Mongodb { .. }
                | Recipe::Smtp { .. }
                | Recipe::Imap { .. }
                | Recipe::Pop3 { .. }
                | Recipe::Ftp { .. }
        );
        if needs_password && !login.has_password() {
            self.err(
                "recipe.login",
                format!("`{name}` logs in with a password: name where it is read with password_env or password_file"),
            );
        }
        let in_clear = matches!(
            recipe,
            Recipe::Smtp { .. }
                | Recipe::Imap { .. }
                | Recipe::Pop3 { .. }
                | Recipe::Ftp { .. }
                | Recipe::Ldap { .. }
        );
        if in_clear && login.has_password() && m.tls.mode == TlsMode::None && !login.allow_plaintext
        {
            self.err(
                "recipe.login",
                format!("`{name}` sends the password as it is: use tls.mode `starttls` or `direct`, or set allow_plaintext = true to send it without TLS"),
            );
        }
    }

    /// A recipe's login: one password source at most, a variable name, a file named, a
    /// bounded query without NUL.
    fn login(&mut self, login: &crate::login::Login, env_name: &dyn Fn(&str) -> bool) {
        if login.password_env.is_some() && login.password_file.is_some() {
            self.err(
                "recipe.login.password_file",
                "conflicts with recipe.login.password_env: name one source of the password",
            );
        }
        if let Some(var) = login.password_env.as_deref().filter(|v| !env_name(v)) {
            self.err(
                "recipe.login.password_env",
                format!("`{var}` is not an environment variable name: use letters, digits and `_`, not starting with a digit"),
            );
        }
        if let Some(path) = login
            .password_file
            .as_deref()
            .filter(|p| p.is_empty() || p.contains('\0'))
        {
            self.err(
                "recipe.login.password_file",
                format!(
                    "`{}` is not a file name: name a file under the secret directory",
                    path.escape_debug()
                ),
            );
        }
        if let Some(query) = login.query.as_deref() {
            let max = crate::login::MAX_LOGIN_QUERY_BYTES;
            if query.trim().is_empty() || query.len() > max || query.contains('\0') {
                self.err(
                    "recipe.login.query",
                    format!("must be 1 to {max} bytes without NUL"),
                );
            }
        }
    }
}
