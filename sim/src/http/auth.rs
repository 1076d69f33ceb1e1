//! Who a request comes from. The simulator serves plain HTTP, over which client-go
//! sends no credentials but does send impersonation headers, so the kubeconfig it
//! writes names the user with `as:` (`Impersonate-User`). A bearer token (for curl
//! and clients that send one) works too: the admin token, or `user:NAME` to act as
//! `NAME`. Anything else is anonymous.

use crate::audit::Requester;
use axum::http::HeaderMap;

/// The user of the written kubeconfig, as kubeadm names its admin.
pub const ADMIN_USER: &str = "kubernetes-admin";

/// The token of the admin user in the written kubeconfig.
pub const ADMIN_TOKEN: &str = "kelemetry-sim-admin";

/// The requester of a request with `headers` from `source_ip`.
pub fn requester(headers: &HeaderMap, source_ip: &str) -> Requester {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let token = header("authorization")
        .strip_prefix("Bearer ")
        .map(str::to_string);
    let impersonated = header("impersonate-user");
    if !impersonated.is_empty() {
        let mut groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if groups.is_empty() && impersonated == ADMIN_USER {
            groups.push("kubeadm:cluster-admins".into());
        }
        groups.push("system:authenticated".into());
        return Requester {
            user: impersonated,
            groups,
            user_agent: header("user-agent"),
            source_ip: source_ip.to_string(),
        };
    }
    let (user, groups) = match token.as_deref() {
        Some(ADMIN_TOKEN) => (
            ADMIN_USER.to_string(),
            vec![
                "kubeadm:cluster-admins".to_string(),
                "system:authenticated".to_string(),
            ],
        ),
        Some(t) if t.starts_with("user:") => (
            t["user:".len()..].to_string(),
            vec!["system:authenticated".to_string()],
        ),
        _ => (
            "system:anonymous".to_string(),
            vec!["system:unauthenticated".to_string()],
        ),
    };
    Requester {
        user,
        groups,
        user_agent: header("user-agent"),
        source_ip: source_ip.to_string(),
    }
}
