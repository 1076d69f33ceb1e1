//! Bearer-token authentication of the node's endpoints.
//!
//! Each protected surface (the audit webhook, the query APIs and UI, the admin API)
//! has a [`Gate`]: open, a token file, or closed. Token files hold one token per line
//! (blank lines and `#` comments ignored), as the API server's webhook kubeconfig and
//! a Kubernetes Secret mounted as a file provide them, and are re-read when they
//! change, so a token is rotated by updating the Secret: no restart.
//!
//! A client presents a token as `Authorization: Bearer <token>`, or as the password of
//! HTTP Basic authentication (any user name), which is what a browser can send to the
//! Jaeger UI when it prompts.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often a token file is checked for changes (at most once per this, on use).
const RELOAD_CHECK: Duration = Duration::from_millis(500);

/// The tokens of one token file, re-read when the file changes.
pub struct TokenFile {
    path: PathBuf,
    flag: &'static str,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    checked: Instant,
    stamp: Option<(SystemTime, u64)>,
    tokens: Arc<Vec<Vec<u8>>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The tokens of a token file (one per line, blank lines and `#` comments
/// ignored); errors name `flag`.
pub(crate) fn read_tokens(path: &Path, flag: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{flag} {}: cannot read: {e}", path.display()))?;
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    anyhow::ensure!(
        !tokens.is_empty(),
        "{flag} {}: no token in the file (one per line)",
        path.display()
    );
    Ok(tokens)
}

impl TokenFile {
    /// Reads `path` (given with `flag`, which errors name).
    pub fn open(path: &Path, flag: &'static str) -> anyhow::Result<Arc<Self>> {
        let tokens = read_tokens(path, flag)?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            flag,
            loaded: Mutex::new(Loaded {
                checked: Instant::now(),
                stamp: stamp(path),
                tokens: Arc::new(tokens),
            }),
        }))
    }

    /// The current tokens, re-reading the file if it changed. A file that became
    /// unreadable or empty keeps the previous tokens (logged): a half-written Secret
    /// update must not lock every client out.
    fn tokens(&self) -> Arc<Vec<Vec<u8>>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.checked.elapsed() >= RELOAD_CHECK {
            loaded.checked = Instant::now();
            let now = stamp(&self.path);
            if now != loaded.stamp {
                match read_tokens(&self.path, self.flag) {
                    Ok(tokens) => {
                        tracing::info!(flag = self.flag, path = %self.path.display(), tokens = tokens.len(), "token file reloaded");
                        loaded.tokens = Arc::new(tokens);
                        loaded.stamp = now;
                    }
                    Err(e) => tracing::warn!(error = %e, "keeping the previous tokens"),
                }
            }
        }
        loaded.tokens.clone()
    }

    /// Whether `presented` is one of the tokens (compared in constant time).
    pub fn allows(&self, presented: &[u8]) -> bool {
        self.tokens()
            .iter()
            .fold(false, |found, t| found | constant_time_eq(t, presented))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who may use one surface of the node.
#[derive(Clone)]
pub enum Gate {
    /// Anyone (no token file configured and authentication off).
    Open,
    /// Clients presenting a token of this file.
    Tokens(Arc<TokenFile>),
    /// Nobody: the surface is off, for the reason given (admin endpoints while
    /// authentication is on elsewhere and no admin token file is set).
    Closed(&'static str),
}

/// Why a request was not let through.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No usable credentials (401).
    Unauthenticated(&'static str),
    /// The surface is closed (403).
    Forbidden(&'static str),
}

impl Gate {
    /// The gate of a surface given its optional token file and flag.
    pub fn from_file(path: Option<&Path>, flag: &'static str) -> anyhow::Result<Self> {
        Ok(match path {
            Some(p) => Gate::Tokens(TokenFile::open(p, flag)?),
            None => Gate::Open,
        })
    }

    /// Whether a request with `authorization` (the header's value) may pass.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Refusal> {
        let tokens = match self {
            Gate::Open => return Ok(()),
            Gate::Closed(why) => return Err(Refusal::Forbidden(why)),
            Gate::Tokens(t) => t,
        };
        let Some(value) = authorization else {
            return Err(Refusal::Unauthenticated("missing Authorization header"));
        };
        let presented = presented_token(value).ok_or(Refusal::Unauthenticated(
            "Authorization is neither Bearer nor Basic",
        ))?;
        if tokens.allows(&presented) {
            Ok(())
        } else {
            Err(Refusal::Unauthenticated("token not accepted"))
        }
    }
}

/// The token in an `Authorization` value: a Bearer token, or a Basic password.
fn presented_token(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

/// A gate and the realm its challenges name.
#[derive(Clone)]
pub struct Guard {
    /// Who may pass.
    pub gate: Gate,
    /// Realm of the `WWW-Authenticate` challenge (`webhook`, `query`, `admin`).
    pub realm: &'static str,
}

/// axum middleware: lets the request through only if the guard's gate allows it,
/// answering 401 (with a challenge a browser shows as a login prompt) or 403 with a
/// JSON error naming the `Authorization` header.
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.gate.check(authorization(request.headers())) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refuse(&guard, refusal),
    }
}

fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
}

fn refuse(guard: &Guard, refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, m),
        Refusal::Forbidden(m) => (StatusCode::FORBIDDEN, m),
    };
    crate::metrics::AUTH_REFUSED
        .with_label_values(&[guard.realm, status.as_str()])
        .inc();
    let body = json!({"error": {"field": "Authorization", "message": message}});
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!(
            "Bearer realm=\"kelemetry-{0}\", Basic realm=\"kelemetry-{0}\"",
            guard.realm
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// The same gate for gRPC: the `authorization` metadata, `UNAUTHENTICATED` or
/// `PERMISSION_DENIED` otherwise.
#[derive(Clone)]
pub struct GrpcGuard(pub Guard);

impl tonic::service::Interceptor for GrpcGuard {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let value = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        match self.0.gate.check(value) {
            Ok(()) => Ok(request),
            Err(refusal) => {
                let (code, message) = match refusal {
                    Refusal::Unauthenticated(m) => (tonic::Code::Unauthenticated, m),
                    Refusal::Forbidden(m) => (tonic::Code::PermissionDenied, m),
                };
                crate::metrics::AUTH_REFUSED
                    .with_label_values(&[self.0.realm, &format!("grpc_{code:?}")])
                    .inc();
                Err(tonic::Status::new(code, message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn tokens_by_bearer_or_basic_password_and_reload_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# apiservers\nalpha\n\n  beta  \n").unwrap();
        let gate = Gate::from_file(Some(&path), "--webhook-token-file").unwrap();
        assert_eq!(gate.check(Some(b"Bearer alpha")), Ok(()));
        assert_eq!(gate.check(Some(b"bearer beta")), Ok(()));
        assert_eq!(gate.check(Some(&basic("anyone", "beta"))), Ok(()));
        assert_eq!(
            gate.check(Some(b"Bearer gamma")),
            Err(Refusal::Unauthenticated("token not accepted"))
        );
        assert_eq!(
            gate.check(Some(b"Bearer # apiservers")),
            Err(Refusal::Unauthenticated("token not accepted"))
        );
        assert!(matches!(gate.check(None), Err(Refusal::Unauthenticated(_))));
        assert!(matches!(
            gate.check(Some(b"Digest x")),
            Err(Refusal::Unauthenticated(_))
        ));
        std::fs::write(&path, "gamma\n").unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
        assert_eq!(gate.check(Some(b"Bearer gamma")), Ok(()));
        assert!(gate.check(Some(b"Bearer alpha")).is_err());
        // A file emptied mid-update keeps the last good tokens.
        std::fs::write(&path, "").unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
        assert_eq!(gate.check(Some(b"Bearer gamma")), Ok(()));
    }

    #[test]
    fn a_missing_or_empty_token_file_names_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Gate::from_file(Some(&missing), "--query-token-file")
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("--query-token-file"), "{err}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nothing\n").unwrap();
        let err = Gate::from_file(Some(&empty), "--admin-token-file")
            .err()
            .unwrap();
        assert!(err.to_string().contains("no token"), "{err}");
        assert!(Gate::from_file(None, "--admin-token-file")
            .unwrap()
            .check(None)
            .is_ok());
        assert_eq!(
            Gate::Closed("off").check(Some(b"Bearer x")),
            Err(Refusal::Forbidden("off"))
        );
    }
}
