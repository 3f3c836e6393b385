//! `GET /login`, `POST /login` and `POST /logout`: a browser trades a read or deploy token
//! for the login cookie (`HttpOnly`, `SameSite=Lax`, `Secure` over TLS), which only reads.
//! Both posts must come from this server's own pages (`Origin` / `Sec-Fetch-Site`), so
//! another site can neither log a browser in nor out.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::pages::html;
use super::state::{AppState, blocking};
use super::viewer::query_value;
use crate::pages;
use crate::store::Role;
use crate::token::{self, TokenHash};

/// The largest login form accepted: 4 KiB.
pub const MAX_FORM_BYTES: usize = 4096;
/// How long the login cookie lasts: 7 days (revoking the token ends it at once).
pub const COOKIE_MAX_AGE_SECONDS: u64 = 7 * 86_400;

pub(super) async fn form(uri: Uri, headers: HeaderMap) -> Response {
    let next = safe_next(query_value(uri.query(), "next").as_deref());
    html(&headers, StatusCode::OK, pages::login::render(&next, None))
}

pub(super) async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    if body.len() > MAX_FORM_BYTES {
        return Err(ApiError::TooLarge(MAX_FORM_BYTES));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the login form is not UTF-8".to_owned()))?;
    let field = |name: &str| query_value(Some(text), name);
    let next = safe_next(field("next").as_deref());
    let token = field("token").unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        let page = pages::login::render(&next, Some("paste a token to log in"));
        return Ok(html(&headers, StatusCode::BAD_REQUEST, page));
    }
    let hash = TokenHash::of(token);
    let store = Arc::clone(&st.store);
    let owner = blocking(move || Ok(store.token_owner(&hash)?)).await?;
    let problem = match owner.map(|o| o.role) {
        None => Some("unknown token: it was mistyped or revoked"),
        Some(Role::Agent) => Some("an agent token cannot log in; use a read or deploy token"),
        Some(Role::Read | Role::Deploy) => None,
    };
    if let Some(problem) = problem {
        let page = pages::login::render(&next, Some(problem));
        return Ok(html(&headers, StatusCode::UNAUTHORIZED, page));
    }
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={COOKIE_MAX_AGE_SECONDS}{}",
        token::COOKIE,
        if st.options.tls { "; Secure" } else { "" }
    );
    see_other(&next, &cookie)
}

pub(super) async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        token::COOKIE,
        if st.options.tls { "; Secure" } else { "" }
    );
    see_other("/login", &cookie)
}

/// A 303 to `to` setting `cookie`.
fn see_other(to: &str, cookie: &str) -> Result<Response, ApiError> {
    let bad = |_| ApiError::Internal("a header value with a forbidden character".to_owned());
    let location = HeaderValue::from_str(to).map_err(bad)?;
    let cookie = HeaderValue::from_str(cookie).map_err(bad)?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, location), (SET_COOKIE, cookie)],
    )
        .into_response())
}

/// Where to go after logging in: a path of this server, else `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && !n.chars().any(|c| c == '\\' || c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Refuses a form posted from another site: `Sec-Fetch-Site` must be `same-origin` (or
/// `none`: typed by the user), and `Origin`, when sent, must be this server's.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(SEC_FETCH_SITE)
        && site != "same-origin"
        && site != "none"
    {
        return Err(cross_site(site));
    }
    if let Some(origin) = text(ORIGIN.as_str()) {
        let host = text(HOST.as_str()).unwrap_or_default();
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        if authority != Some(host) {
            return Err(cross_site(origin));
        }
    }
    Ok(())
}

const SEC_FETCH_SITE: &str = "sec-fetch-site";

fn cross_site(from: &str) -> ApiError {
    ApiError::CrossSite(from.escape_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        for (next, expected) in [
            (Some("/monitors/db?range=7d"), "/monitors/db?range=7d"),
            (Some("//evil.example/"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/a\nb"), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }

    #[test]
    fn only_this_servers_pages_may_post() {
        let check = |pairs: &[(&str, &str)], ok: bool| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            assert_eq!(same_origin(&headers).is_ok(), ok, "{pairs:?}");
        };
        check(&[], true);
        check(&[("host", "cp:8080"), ("origin", "http://cp:8080")], true);
        check(&[("host", "cp"), ("origin", "https://cp")], true);
        check(
            &[("host", "cp:8080"), ("origin", "http://evil:8080")],
            false,
        );
        check(&[("host", "cp"), ("origin", "null")], false);
        check(&[("sec-fetch-site", "same-origin")], true);
        check(&[("sec-fetch-site", "cross-site")], false);
        check(&[("sec-fetch-site", "same-site")], false);
    }
}
