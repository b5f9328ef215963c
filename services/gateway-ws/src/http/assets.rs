//! The browser UI, embedded at compile time from `assets/` (built from `web/` by
//! `npm run build`; `web/check` proves the two match), so the binary needs no files at run time.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("terminal.js", "text/javascript; charset=utf-8"),
    asset!("terminal.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    // The terminal's font (fonts.css in web/src), so no machine falls back to one that clips.
    asset!("jetbrains-mono-latin-400.woff2", "font/woff2"),
    asset!("jetbrains-mono-latin-700.woff2", "font/woff2"),
    asset!("jetbrains-mono-latin-ext-400.woff2", "font/woff2"),
    asset!("jetbrains-mono-latin-ext-700.woff2", "font/woff2"),
];

pub const INDEX_HTML: &[u8] = include_bytes!("../../assets/index.html");
pub const TERMINAL_HTML: &[u8] = include_bytes!("../../assets/terminal.html");

/// A version tag for caches: the build's package version plus the asset's length and a cheap
/// checksum (FNV-1a), so a rebuilt asset gets a new tag.
fn etag(asset: &Asset) -> String {
    let hash = asset.body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(
        "\"{}-{:x}-{hash:016x}\"",
        env!("CARGO_PKG_VERSION"),
        asset.body.len()
    )
}

/// `GET /assets/{name}`: revalidated on every use (`no-cache` + ETag), so an upgrade is seen at once.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let tag = etag(asset);
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str) -> &'static str {
        let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
        std::str::from_utf8(asset.body).unwrap()
    }

    #[test]
    fn every_asset_is_embedded_and_referenced() {
        let index = std::str::from_utf8(INDEX_HTML).unwrap();
        let terminal = std::str::from_utf8(TERMINAL_HTML).unwrap();
        let terminal_css = body("terminal.css");
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            let path = format!("/assets/{}", a.name);
            assert!(
                index.contains(&path) || terminal.contains(&path) || terminal_css.contains(&path),
                "{} is not used by a page",
                a.name
            );
        }
        // Every page names its icon: without one, browsers ask for /favicon.ico (a 404).
        for page in [index, terminal] {
            assert!(page.contains(r#"<link rel="icon" href="/assets/favicon.svg""#));
        }
        // No inline script: the Content-Security-Policy allows scripts from 'self' only.
        assert!(!index.contains("<script>") && !terminal.contains("<script>"));
    }
}
