//! The kubeconfig the simulator writes for `kubectl` and for Kelemetry's `--cluster`.

use std::path::Path;

/// A kubeconfig for `server` acting as `user` (by impersonation, which client-go
/// sends over plain HTTP) with `token` for clients that send tokens, as YAML (which
/// every kubeconfig reader accepts).
pub fn render(server: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kelemetry-sim
  cluster:
    server: {server}
users:
- name: admin
  user:
    token: {token}
    as: {user}
contexts:
- name: kelemetry-sim
  context:
    cluster: kelemetry-sim
    user: admin
    namespace: default
current-context: kelemetry-sim
"
    )
}

/// Writes the kubeconfig atomically (temporary file, then rename), so a reader never
/// sees half of it.
pub fn write(path: &Path, server: &str, user: &str, token: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(server, user, token))?;
    std::fs::rename(tmp, path)
}
