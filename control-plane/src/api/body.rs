//! Request bodies: the content type (JSON), the body limit (a `Content-Length` over it is
//! refused before any of the body is read), gzip, UTF-8 (a leading byte order mark is
//! skipped) and JSON read with the path, line and column of the first error.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::error::ApiError;

/// The UTF-8 byte order mark, skipped at the start of a body.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a JSON body of at most `limit` bytes (gzip-encoded or not, see [`read_body`])
/// and decodes it as `what` off the async workers.
pub(super) async fn json_body<T: serde::de::DeserializeOwned + Send + 'static>(
    limit: usize,
    req: Request,
    what: &'static str,
) -> Result<T, ApiError> {
    let (body, gzip) = read_body(limit, req).await?;
    super::state::blocking(move || decode(&body, gzip, limit, what)).await
}

/// The body as sent (limited) and whether it is gzip; 415 for a content type other than
/// JSON or an encoding other than gzip, 413 at once for a `Content-Length` over `limit`.
pub(super) async fn read_body(limit: usize, req: Request) -> Result<(Bytes, bool), ApiError> {
    json_typed(req.headers())?;
    let gzip = gzip_encoded(req.headers())?;
    declared_length(req.headers(), limit)?;
    let body = Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest("could not read the request body".to_owned())
        }
    })?;
    Ok((body, gzip))
}

/// 415 unless the content type is `application/json` (any parameters, such as a charset).
fn json_typed(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedType("none".to_owned()));
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        let mut shown = text.escape_default().to_string();
        monitor_spec::limits::truncate(&mut shown, 200);
        Err(ApiError::UnsupportedType(shown))
    }
}

/// 413 when the declared `Content-Length` is over `limit` (or is no number at all).
fn declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    for value in headers.get_all(CONTENT_LENGTH) {
        let length = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_none_or(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(ApiError::TooLarge(limit));
        }
    }
    Ok(())
}

/// Whether the body is gzip; 415 for any other encoding than identity.
fn gzip_encoded(headers: &HeaderMap) -> Result<bool, ApiError> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let (first, second) = (values.next(), values.next());
    let Some(first) = first else {
        return Ok(false);
    };
    let shown = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).to_lowercase();
    if let Some(second) = second {
        return Err(ApiError::UnsupportedEncoding(format!(
            "{}, {}",
            shown(first),
            shown(second)
        )));
    }
    match shown(first).trim() {
        "gzip" | "x-gzip" => Ok(true),
        "identity" | "" => Ok(false),
        other => Err(ApiError::UnsupportedEncoding(other.to_owned())),
    }
}

/// Decodes a body (gzip when `gzip`) and reads it as JSON into `T`.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    gzip: bool,
    limit: usize,
    what: &'static str,
) -> Result<T, ApiError> {
    let decoded;
    let bytes: &[u8] = if gzip {
        decoded = gunzip(body, limit)?;
        &decoded
    } else {
        body
    };
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not utf-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    read_json(text, what)
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("malformed gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(out)
}

/// Reads JSON into `T`, naming the field path, line and column of the first error.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, ApiError> {
    monitor_spec::json::read(text).map_err(|e| ApiError::MalformedJson {
        what,
        path: e.path,
        message: e.message,
        line: e.line,
        column: e.column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::CONTENT_ENCODING;
    use monitor_spec::api::DeployRequest;

    #[test]
    fn malformed_json_names_path_line_and_column() {
        let text = "{\"bundle\": {\"schema_version\": 1, \"monitors\": [\n{\"schema_version\": 1, \"id\": \"a\", \"name\": \"a\", \"target\": {\"host\": \"h\", \"port\": \"x\"}}]}}";
        let err = read_json::<DeployRequest>(text, "deploy request").unwrap_err();
        let ApiError::MalformedJson {
            path, line, column, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(path, "bundle.monitors[0].target.port");
        assert_eq!(*line, 2);
        assert!(*column > 60, "{column}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn gzip_is_capped() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 100_000]).unwrap();
        let small = enc.finish().unwrap();
        assert!(matches!(
            gunzip(&small, 1000),
            Err(ApiError::TooLarge(1000))
        ));
        assert_eq!(gunzip(&small, 100_000).unwrap().len(), 100_000);
        assert!(matches!(
            gunzip(b"not gzip", 1000),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let body = b"\xEF\xBB\xBF{\"agent\":\"a\",\"location\":\"l\",\"results\":[]}";
        let request: monitor_spec::api::ResultsRequest =
            decode(body, false, 1000, "results request").unwrap();
        assert_eq!(request.agent, "a");
    }

    #[test]
    fn content_types_and_lengths() {
        let check = |value: Option<&'static str>, ok: bool| {
            let mut h = HeaderMap::new();
            if let Some(v) = value {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            }
            assert_eq!(json_typed(&h).is_ok(), ok, "{value:?}");
        };
        check(Some("application/json"), true);
        check(Some("Application/JSON; charset=utf-8"), true);
        check(Some("text/plain"), false);
        check(Some("application/jsonx"), false);
        check(None, false);
        let length = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_LENGTH, HeaderValue::from_static(value));
            declared_length(&h, 1000).is_ok()
        };
        assert!(length("1000"));
        assert!(!length("1001"));
        assert!(!length("9223372036854775808"));
        assert!(!length("99999999999999999999999"));
        assert!(declared_length(&HeaderMap::new(), 1000).is_ok());
    }

    #[test]
    fn encodings() {
        let mut h = HeaderMap::new();
        assert!(!gzip_encoded(&h).unwrap());
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        assert!(gzip_encoded(&h).unwrap());
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(matches!(
            gzip_encoded(&h),
            Err(ApiError::UnsupportedEncoding(_))
        ));
    }
}
