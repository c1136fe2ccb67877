//! The live page at `/`: a small table of one kind's DTOs that fills from a watch
//! stream's `snapshot` and changes with its deltas, falling back to polling the way
//! Periscope's SPA does (`spec/dtos.md` 3.4).
//!
//! The page is three static files under `web/assets/`, embedded in the binary with
//! `include_str!`: no build step, no framework, no CDN. It holds no cluster data itself,
//! so its routes are public; the data comes from the API routes, which authenticate as
//! usual. The page knows no kind either: its kind picker comes from `/api/features` and
//! its columns from the DTOs' own keys.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | `index.html` |
//! | `GET /assets/app.js` | the page's one ES module |
//! | `GET /assets/app.css` | its styles |
//!
//! Every response carries a strong `ETag` (a digest of the file) and
//! `Cache-Control: no-cache`, so browsers revalidate and get `304 Not Modified` until the
//! binary changes; the file names carry no hash, so a long `max-age` would serve a stale
//! script after an upgrade.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// `index.html`.
const INDEX_HTML: &str = include_str!("assets/index.html");
/// `app.js`.
const APP_JS: &str = include_str!("assets/app.js");
/// `app.css`.
const APP_CSS: &str = include_str!("assets/app.css");

/// The page's policy: everything from this origin, nothing inline, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file with its content type and validator.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Asset {
            body,
            content_type,
            etag: HeaderValue::from_str(&etag).expect("a quoted hex string is a valid header value"),
        }
    }

    /// `200` with the file, or `304` when the request's `If-None-Match` names it.
    fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/").as_bytes() == self.etag.as_bytes()
            });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type))],
                self.body,
            )
                .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| Asset::new(INDEX_HTML, "text/html; charset=utf-8"));
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::new(APP_JS, "text/javascript; charset=utf-8"));
static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::new(APP_CSS, "text/css; charset=utf-8"));

/// The page's routes; they need no state, so they merge into any router.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { INDEX.respond(&headers) }))
        .route(
            "/assets/app.js",
            get(|headers: HeaderMap| async move { SCRIPT.respond(&headers) }),
        )
        .route(
            "/assets/app.css",
            get(|headers: HeaderMap| async move { STYLE.respond(&headers) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_header(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn every_asset_is_served_with_its_type_and_a_validator() {
        for (asset, ty) in [
            (&*INDEX, "text/html; charset=utf-8"),
            (&*SCRIPT, "text/javascript; charset=utf-8"),
            (&*STYLE, "text/css; charset=utf-8"),
        ] {
            let response = asset.respond(&HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(get_header(&response, header::CONTENT_TYPE), ty);
            assert_eq!(get_header(&response, header::CACHE_CONTROL), "no-cache");
            assert!(get_header(&response, header::ETAG).starts_with('"'));
        }
    }

    #[test]
    fn a_matching_if_none_match_gets_not_modified() {
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, SCRIPT.etag.clone());
        assert_eq!(SCRIPT.respond(&request).status(), StatusCode::NOT_MODIFIED);
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\", W/\"x\""));
        assert_eq!(SCRIPT.respond(&request).status(), StatusCode::OK);
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        assert!(INDEX_HTML.contains(r#"src="/assets/app.js""#));
        assert!(INDEX_HTML.contains(r#"href="/assets/app.css""#));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
        assert!(!APP_JS.contains("http://") && !APP_JS.contains("https://"));
    }
}
