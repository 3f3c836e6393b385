//! Request bodies: the body limit, gzip, UTF-8 and JSON read with the path,
//! line and column of the first error.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_ENCODING;
use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::error::ApiError;

/// The body as sent (limited) and whether it is gzip; 415 for other encodings.
pub(super) async fn read_body(limit: usize, req: Request) -> Result<(Bytes, bool), ApiError> {
    let gzip = gzip_encoded(req.headers())?;
    let body = Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest("could not read the request body".to_owned())
        }
    })?;
    Ok((body, gzip))
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
