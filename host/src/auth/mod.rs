//! Authentication: who is asking. Modes `none` (development: every request is the
//! admin actor `anonymous`) and `jwt` (a signed token, verified with `jsonwebtoken`).
//!
//! A token is read from `Authorization: Bearer`, else from the configured cookie
//! (browsers' `EventSource` cannot set headers), else — only when enabled — from the
//! `access_token` query parameter. Verification pins the algorithms to the configured
//! list (`none` is never accepted) and picks keys by algorithm family, so an HS256 token
//! is never checked against an RSA public key; `exp` and `sub` are required, `nbf`,
//! `iss` and `aud` are checked when present or configured, with a small leeway.
//!
//! The actor is the `sub` claim; groups come from the configured claim; admins are
//! members of the configured admin group. Revoked subjects (a file re-read when it
//! changes, plus the admin endpoint) are refused and end their open streams.

pub mod rbac;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::{AuthConfig, AuthMode};

/// The subject of unauthenticated requests in mode `none`.
pub const ANONYMOUS: &str = "anonymous";

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub` (or `anonymous`); caps, revocations and logs key on it.
    pub subject: String,
    /// The Kubernetes user RBAC is checked for: the `auth.username_claim` claim
    /// (default `sub`).
    pub username: String,
    /// Groups from the configured claim.
    pub groups: Vec<String>,
    /// The token's `email` claim; `""` when it has none (and for `anonymous`).
    pub email: String,
    /// Member of the admin group (always true for `anonymous` in mode `none`).
    pub admin: bool,
    /// When the token expires (`exp`), as seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// Who the per-user caps count against: the subject, or with auth off
    /// `anonymous@<client address>`, so browsers do not share one cap.
    pub quota: String,
}

impl Actor {
    /// The development actor of mode `none`.
    pub fn anonymous() -> Actor {
        Actor {
            subject: ANONYMOUS.to_string(),
            username: ANONYMOUS.to_string(),
            groups: Vec::new(),
            email: String::new(),
            admin: true,
            expires_at: None,
            quota: ANONYMOUS.to_string(),
        }
    }

    /// The development actor of mode `none`, counted per client address.
    pub fn anonymous_from(client: std::net::IpAddr) -> Actor {
        Actor {
            quota: format!("{ANONYMOUS}@{client}"),
            ..Actor::anonymous()
        }
    }
}

/// Why a request is not authenticated; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the header, cookie or (when enabled) query.
    #[error("no token: send Authorization: Bearer <token> or the {cookie} cookie")]
    Missing {
        /// The cookie name.
        cookie: String,
    },
    /// The token did not verify.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The subject is revoked.
    #[error("the subject of this token is revoked")]
    Revoked,
}

/// Why authentication could not be set up (exit 64: a configuration problem).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A key file could not be read.
    #[error("auth: cannot read {path} (from {key})")]
    Read {
        /// The file.
        path: PathBuf,
        /// The config key naming it.
        key: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file does not hold a usable key.
    #[error("auth: {path} (from {key}) is not a usable key: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The config key naming it.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// An algorithm name is not known.
    #[error("auth: unknown algorithm {0:?} in auth.algorithms")]
    Algorithm(String),
}

/// A verification key and the family of algorithms it serves.
struct Key {
    key: DecodingKey,
    kid: Option<String>,
    family: jsonwebtoken::AlgorithmFamily,
}

/// Verifies requests' tokens and tracks revoked subjects.
pub struct Authenticator {
    mode: AuthMode,
    keys: Vec<Key>,
    algorithms: Vec<Algorithm>,
    validation: Validation,
    cookie: String,
    query_token: bool,
    groups_claim: String,
    username_claim: String,
    username_prefix: String,
    groups_prefix: String,
    allow_system_groups: bool,
    admin_group: Option<String>,
    revoked: RwLock<HashSet<String>>,
    revocation_file: Option<PathBuf>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("algorithms", &self.algorithms)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Reads the keys named by the configuration.
    pub fn new(config: &AuthConfig) -> Result<Arc<Authenticator>, SetupError> {
        let algorithms = config
            .algorithms
            .iter()
            .map(|name| {
                name.parse::<Algorithm>()
                    .map_err(|_| SetupError::Algorithm(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys = Vec::new();
        if matches!(config.mode, AuthMode::Jwt) {
            if let Some(path) = &config.secret_file {
                let secret = read(path, "auth.secret_file")?;
                let secret = trim_newline(&secret);
                if secret.len() < 32 {
                    return Err(SetupError::BadKey {
                        path: path.clone(),
                        key: "auth.secret_file",
                        reason: format!("an HMAC secret needs at least 32 bytes, this one has {}", secret.len()),
                    });
                }
                keys.push(Key {
                    key: DecodingKey::from_secret(secret),
                    kid: None,
                    family: jsonwebtoken::AlgorithmFamily::Hmac,
                });
            }
            for path in &config.public_key_files {
                keys.push(public_key(path)?);
            }
            if let Some(path) = &config.jwks_file {
                let bad = |reason: String| SetupError::BadKey {
                    path: path.clone(),
                    key: "auth.jwks_file",
                    reason,
                };
                let set: JwkSet =
                    serde_json::from_slice(&read(path, "auth.jwks_file")?).map_err(|e| bad(e.to_string()))?;
                for jwk in &set.keys {
                    let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
                    let family = match &jwk.algorithm {
                        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => jsonwebtoken::AlgorithmFamily::Rsa,
                        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => jsonwebtoken::AlgorithmFamily::Ec,
                        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => jsonwebtoken::AlgorithmFamily::Ed,
                        jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => jsonwebtoken::AlgorithmFamily::Hmac,
                    };
                    keys.push(Key {
                        key,
                        kid: jwk.common.key_id.clone(),
                        family,
                    });
                }
            }
        }
        let mut validation = Validation::new(algorithms.first().copied().unwrap_or(Algorithm::RS256));
        validation.algorithms.clone_from(&algorithms);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let authenticator = Authenticator {
            mode: config.mode,
            keys,
            algorithms,
            validation,
            cookie: config.cookie.clone(),
            query_token: config.query_token,
            groups_claim: config.groups_claim.clone(),
            username_claim: config.username_claim.clone(),
            username_prefix: config.username_prefix.clone(),
            groups_prefix: config.groups_prefix.clone(),
            allow_system_groups: config.allow_system_groups,
            admin_group: config.admin_group.clone(),
            revoked: RwLock::new(HashSet::new()),
            revocation_file: config.revocation_file.clone(),
        };
        authenticator.reload_revocations();
        Ok(Arc::new(authenticator))
    }

    /// The last Unix second `actor`'s token is accepted: its `exp` plus `auth.leeway`,
    /// the rule verification applies. Every later check (a GraphQL `subscribe`, a
    /// stream's end at expiry) uses this same instant, so a token inside the leeway is
    /// treated alike everywhere (decision 93).
    pub fn valid_until(&self, actor: &Actor) -> Option<u64> {
        actor.expires_at.map(|exp| exp.saturating_add(self.validation.leeway))
    }

    /// True in mode `none`.
    pub fn is_disabled(&self) -> bool {
        matches!(self.mode, AuthMode::None)
    }

    /// The actor of a request, from its headers and query string.
    pub fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Actor, AuthError> {
        if self.is_disabled() {
            return Ok(Actor::anonymous());
        }
        let token = self.token(headers, query).ok_or_else(|| AuthError::Missing {
            cookie: self.cookie.clone(),
        })?;
        let actor = self.verify(&token)?;
        if self.is_revoked(&actor.subject) {
            return Err(AuthError::Revoked);
        }
        Ok(actor)
    }

    /// Verifies a token (also used by transports that receive it in a message).
    pub fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let family = header.alg.family();
        let candidates = self
            .keys
            .iter()
            .filter(|k| k.family == family)
            .filter(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid);
        let mut last = AuthError::Invalid(format!("no key for algorithm {:?}", header.alg));
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key.key, &validation) {
                Ok(data) => return self.actor(&data.claims),
                Err(error) => last = AuthError::Invalid(describe(&error)),
            }
        }
        Err(last)
    }

    /// The actor of verified claims. Like the Kubernetes OIDC authenticator, a token
    /// without the username claim is refused rather than guessed, and the configured
    /// prefixes are put before the username and every group, so a token cannot name
    /// a user or group the cluster gives to something else. A `system:` user or group
    /// (after the prefixes) is refused unless `auth.allow_system_groups`: those names
    /// belong to Kubernetes itself (`system:masters` is cluster-admin, bound by no
    /// RoleBinding and never denied), and they would reach every access review.
    fn actor(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Result<Actor, AuthError> {
        let groups: Vec<String> = match claims.get(&self.groups_claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(|g| format!("{}{g}", self.groups_prefix)))
                .collect(),
            Some(serde_json::Value::String(group)) => vec![format!("{}{group}", self.groups_prefix)],
            _ => Vec::new(),
        };
        let admin = self.admin_group.as_ref().is_some_and(|admin| groups.contains(admin));
        let subject = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string();
        let username = claims
            .get(&self.username_claim)
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                AuthError::Invalid(format!("missing claim {:?} (auth.username_claim)", self.username_claim))
            })?;
        let username = format!("{}{username}", self.username_prefix);
        if !self.allow_system_groups {
            if let Some(group) = groups.iter().find(|g| g.starts_with(SYSTEM)) {
                return Err(AuthError::Invalid(format!(
                    "group {:?} is reserved for Kubernetes: tokens may not carry system: groups (set \
                     auth.groups_prefix, or auth.allow_system_groups = true to pass them on)",
                    truncate(group, 64)
                )));
            }
            if username.starts_with(SYSTEM) {
                return Err(AuthError::Invalid(format!(
                    "user {:?} is reserved for Kubernetes: tokens may not name system: users (set \
                     auth.username_prefix, or auth.allow_system_groups = true to pass them on)",
                    truncate(&username, 64)
                )));
            }
        }
        let email = claims
            .get("email")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string();
        Ok(Actor {
            username,
            quota: subject.clone(),
            subject,
            groups,
            email,
            admin,
            expires_at: claims.get("exp").and_then(numeric_date),
        })
    }

    /// The token of a request's headers (`Authorization: Bearer`, else the cookie),
    /// for transports that verify it later (`/graphqlws` at `connection_init`).
    pub fn request_token(&self, headers: &HeaderMap) -> Option<String> {
        self.token(headers, None)
    }

    fn token(&self, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string());
        let cookie = || {
            headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == self.cookie)
                .map(|(_, value)| value.trim_matches('"').to_string())
        };
        let from_query = || {
            self.query_token
                .then_some(query)
                .flatten()
                .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
                .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "access_token").map(|(_, v)| v))
        };
        bearer.or_else(cookie).or_else(from_query).filter(|t| !t.is_empty())
    }

    /// True when `subject` is revoked.
    pub fn is_revoked(&self, subject: &str) -> bool {
        self.revoked.read().unwrap_or_else(|p| p.into_inner()).contains(subject)
    }

    /// Revokes `subject` until restart (the admin endpoint).
    pub fn revoke(&self, subject: &str) {
        tracing::warn!(actor = %subject, "subject revoked");
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subject.to_string());
    }

    /// Revoked subjects, sorted.
    pub fn revoked(&self) -> Vec<String> {
        let mut subjects: Vec<String> = self
            .revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        subjects.sort();
        subjects
    }

    /// Re-reads the revocation file (subjects one per line; `#` comments), adding what
    /// it lists to the revoked set.
    pub fn reload_revocations(&self) {
        let Some(path) = &self.revocation_file else {
            return;
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let listed = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'));
                let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
                for subject in listed {
                    if revoked.insert(subject.to_string()) {
                        tracing::warn!(actor = %subject, file = %path.display(), "subject revoked");
                    }
                }
            }
            Err(error) => tracing::warn!(file = %path.display(), %error, "cannot read the revocation file"),
        }
    }

    /// Watches the revocation file, re-reading it whenever its modification time
    /// changes (checked every second).
    pub fn watch_revocations(self: &Arc<Self>) {
        let Some(path) = self.revocation_file.clone() else {
            return;
        };
        let authenticator = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen = modified(&path);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(authenticator) = authenticator.upgrade() else {
                    return;
                };
                let now = modified(&path);
                if now != seen {
                    seen = now;
                    authenticator.reload_revocations();
                }
            }
        });
    }
}

/// The prefix of the users and groups Kubernetes keeps for itself.
const SYSTEM: &str = "system:";

/// A JWT NumericDate (RFC 7519 §2: seconds, possibly fractional) as whole seconds,
/// rounded down so a fractional expiry never lasts longer than the token says. A
/// negative time is the epoch; a value beyond `u64` is the largest. `None` for a
/// value that is not a number. (`jsonwebtoken` checks `exp` and `nbf` the same way:
/// it reads fractions as numbers too.)
pub fn numeric_date(value: &serde_json::Value) -> Option<u64> {
    if let Some(seconds) = value.as_u64() {
        return Some(seconds);
    }
    let seconds = value.as_f64()?;
    if seconds.is_nan() {
        return None;
    }
    // `as` saturates: negative → 0, beyond u64::MAX → u64::MAX.
    Some(seconds.floor() as u64)
}

/// At most `max` characters of `text`, with `…` when cut (echoed input is bounded).
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::Read {
        path: path.to_path_buf(),
        key,
        source,
    })
}

/// The HMAC secret of a `secret_file`: its whole contents but one final line ending
/// (`\n` or `\r\n`), which `echo`, editors and `kubectl create secret --from-file` of
/// such a file add. Every other byte, spaces and tabs included, is part of the key
/// (decision 96).
fn trim_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// An RSA or EC public key from a PEM file.
fn public_key(path: &Path) -> Result<Key, SetupError> {
    let pem = read(path, "auth.public_key_files")?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok(Key {
            key,
            kid: None,
            family: jsonwebtoken::AlgorithmFamily::Rsa,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok(Key {
            key,
            kid: None,
            family: jsonwebtoken::AlgorithmFamily::Ec,
        });
    }
    if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        return Ok(Key {
            key,
            kid: None,
            family: jsonwebtoken::AlgorithmFamily::Ed,
        });
    }
    Err(SetupError::BadKey {
        path: path.to_path_buf(),
        key: "auth.public_key_files",
        reason: "not a PEM RSA, EC or Ed25519 public key".into(),
    })
}

/// A short, stable reason for a verification failure.
fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not yet valid (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim:?}"),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod secret_file_tests {
    use super::trim_newline;

    #[test]
    fn a_secret_file_loses_one_final_line_ending_and_nothing_else() {
        assert_eq!(trim_newline(b"k3y\n"), b"k3y");
        assert_eq!(trim_newline(b"k3y\r\n"), b"k3y");
        assert_eq!(trim_newline(b"k3y\n\n"), b"k3y\n");
        assert_eq!(trim_newline(b" k3y \t"), b" k3y \t");
        assert_eq!(trim_newline(b"k3y"), b"k3y");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jsonwebtoken::{EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::RbacMode;

    const SECRET: &str = "an-hmac-secret-that-is-long-enough-for-hs256";

    fn authenticator(allow_system_groups: bool) -> (Arc<Authenticator>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET).unwrap();
        let config = AuthConfig {
            mode: AuthMode::Jwt,
            issuer: None,
            audience: None,
            algorithms: vec!["HS256".to_string()],
            secret_file: Some(secret),
            public_key_files: Vec::new(),
            jwks_file: None,
            leeway: Duration::from_secs(30),
            cookie: "periscope_token".to_string(),
            query_token: false,
            groups_claim: "groups".to_string(),
            admin_group: None,
            username_prefix: String::new(),
            groups_prefix: String::new(),
            allow_system_groups,
            revocation_file: None,
            username_claim: "sub".to_string(),
            rbac: RbacMode::Off,
            rbac_ttl: Duration::from_secs(30),
            protect_metrics: false,
        };
        (Authenticator::new(&config).unwrap(), dir)
    }

    fn sign(claims: &Value) -> String {
        jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    }

    fn now() -> f64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    #[test]
    fn numeric_dates_are_whole_seconds_rounded_down() {
        assert_eq!(numeric_date(&json!(17)), Some(17));
        assert_eq!(numeric_date(&json!(1765000000.9)), Some(1765000000));
        assert_eq!(numeric_date(&json!(-3.5)), Some(0));
        assert_eq!(numeric_date(&json!(1e300)), Some(u64::MAX));
        assert_eq!(numeric_date(&json!(u64::MAX)), Some(u64::MAX));
        assert_eq!(numeric_date(&json!("17")), None);
        assert_eq!(numeric_date(&Value::Null), None);
    }

    #[test]
    fn echoed_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 2), "éé…");
    }

    /// A claim value a token might carry where a NumericDate belongs.
    fn date() -> impl Strategy<Value = Value> {
        let now = now();
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            (now - 1e6..now + 1e9).prop_map(|f| json!(f)),
            ((now as u64 - 100_000)..(now as u64 + 100_000)).prop_map(Value::from),
            Just(json!("soon")),
            Just(json!([1])),
            Just(Value::Null),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Generated claims through the real verifier, then the stream's expiry
        /// arithmetic: nothing panics, an accepted token's expiry is in its claims, and
        /// no `system:` user or group gets through.
        #[test]
        fn generated_claims_never_panic_or_pass_system_names(
            exp in date(),
            nbf in proptest::option::of(date()),
            iat in proptest::option::of(date()),
            sub in "(system:)?[a-z]{1,8}",
            groups in proptest::collection::vec("(system:)?[a-z:]{0,10}", 0..4),
        ) {
            let (auth, _dir) = authenticator(false);
            let mut claims = json!({ "sub": sub, "exp": exp, "groups": groups });
            if let Some(nbf) = nbf {
                claims["nbf"] = nbf;
            }
            if let Some(iat) = iat {
                claims["iat"] = iat;
            }
            if let Ok(actor) = auth.verify(&sign(&claims)) {
                prop_assert!(!actor.username.starts_with(SYSTEM));
                prop_assert!(!actor.groups.iter().any(|g| g.starts_with(SYSTEM)));
                let expires_at = actor.expires_at;
                prop_assert_eq!(expires_at, numeric_date(&claims["exp"]));
                prop_assert!(expires_at.is_some_and(|exp| exp as f64 + 31.0 >= now()));
                let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                let _ = runtime.block_on(async { expires_at.and_then(crate::transport::session::expiry_instant) });
            }
        }
    }

    #[test]
    fn system_groups_pass_only_when_allowed() {
        let claims = json!({ "sub": "mallory", "exp": now() + 60.0, "groups": ["system:masters"] });
        let (strict, _a) = authenticator(false);
        let refused = strict.verify(&sign(&claims)).unwrap_err();
        assert!(refused.to_string().contains("system:masters"), "{refused}");
        let (open, _b) = authenticator(true);
        assert_eq!(open.verify(&sign(&claims)).unwrap().groups, ["system:masters"]);
    }
}
