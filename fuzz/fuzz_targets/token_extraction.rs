//! Token extraction and verification in JWT mode: arbitrary `Authorization` and
//! `Cookie` headers and query strings never panic and never authenticate (nothing here
//! knows the secret).
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use periscope::auth::Authenticator;
use periscope::config::load;

static AUTH: LazyLock<Arc<Authenticator>> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("periscope-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let secret = dir.join("secret");
    std::fs::write(&secret, "a-fuzzing-secret-that-is-long-enough-for-hs256").expect("the secret is written");
    let env: std::collections::HashMap<String, String> = [
        ("PERISCOPE_AUTH_MODE", "jwt".to_string()),
        ("PERISCOPE_AUTH_ALGORITHMS", "HS256".to_string()),
        ("PERISCOPE_AUTH_SECRET_FILE", secret.display().to_string()),
        ("PERISCOPE_AUTH_QUERY_TOKEN", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = load(None, &env).expect("a valid configuration");
    Authenticator::new(&config.auth).expect("the authenticator starts")
});

fuzz_target!(|input: (&[u8], &[u8], &str)| {
    let (authorization, cookie, query) = input;
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(cookie) {
        headers.insert(header::COOKIE, value);
    }
    assert!(AUTH.authenticate(&headers, Some(query)).is_err());
});
