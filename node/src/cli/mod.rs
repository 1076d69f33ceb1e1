//! Command-line interface; every flag can also be set from a `KELEMETRY_*` variable.

mod export;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
pub use serve::{
    AuthArgs, FlagError, IngestArgs, KubeArgs, ListenArgs, NodeArgs, QueryArgs, RingArgs, ServeArgs,
};
use std::time::Duration;

/// Control-plane tracing for Kubernetes: audit logs, Events and object changes as
/// Jaeger traces, stored in a self-contained replicated cluster.
#[derive(Parser, Debug)]
#[command(name = "kelemetry", version, about, args_override_self = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node: audit webhook, storage, Jaeger query API and metrics.
    Serve(Box<ServeArgs>),
    /// Inspect a running cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `kelemetry cluster ...`.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show each shard's leader and term, and how leadership is spread.
    Status {
        /// Base URL of any node's webhook/admin server.
        #[arg(
            long,
            env = "KELEMETRY_TARGET",
            default_value = "http://127.0.0.1:8080"
        )]
        target: String,
    },
    /// Move every replica and all leadership off a node, then mark it removed;
    /// prints progress until done.
    Drain {
        /// Id of the node to drain.
        node: u64,
        /// Base URL of any node's webhook/admin server.
        #[arg(
            long,
            env = "KELEMETRY_TARGET",
            default_value = "http://127.0.0.1:8080"
        )]
        target: String,
        /// Return once the drain is accepted instead of waiting for it to finish.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting after this long.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// The StatefulSet's preStop hook: drains this node when the StatefulSet is
    /// scaling down past its pod (ordinal >= spec.replicas), after every higher
    /// leaving ordinal has left; returns at once when the pod merely restarts.
    LeaveIfScaledDown(crate::prestop::LeaveArgs),
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30m, 1h, 7d)"))?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

pub(crate) fn peer(s: &str) -> Result<(u64, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected id=host:port"))?;
    let id = id
        .parse()
        .map_err(|_| format!("{s:?}: node id must be a number"))?;
    if !addr.contains(':') {
        return Err(format!("{s:?}: address must be host:port"));
    }
    Ok((id, addr.to_string()))
}

pub(crate) fn cluster_name(s: &str) -> Result<String, String> {
    kelemetry_core::key::validate_cluster_name(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_flags_name_the_flag() {
        let err = Cli::try_parse_from(["kelemetry", "serve", "--span-ttl", "soon"]).unwrap_err();
        assert!(err.to_string().contains("--span-ttl"), "{err}");
        let err = Cli::try_parse_from(["kelemetry", "serve", "--shards", "0"]).unwrap_err();
        assert!(err.to_string().contains("--shards"), "{err}");
        let err =
            Cli::try_parse_from(["kelemetry", "serve", "--default-cluster", "a/b"]).unwrap_err();
        assert!(err.to_string().contains("--default-cluster"), "{err}");
        let half = Cli::try_parse_from(["kelemetry", "serve", "--peer-tls-cert", "c.pem"]).unwrap();
        let Command::Serve(h) = half.command else {
            panic!("serve")
        };
        assert!(h
            .raft_settings()
            .unwrap_err()
            .to_string()
            .contains("--peer-tls-key"));
        let ok = Cli::try_parse_from(["kelemetry", "serve", "--retention", "2d"]).unwrap();
        let Command::Serve(a) = ok.command else {
            panic!("serve")
        };
        assert_eq!(a.ingest.retention, Duration::from_secs(2 * 86400));
        assert_eq!(a.ingest.exclude_types.len(), 3);
    }

    /// The storage flags reach the Raft settings whether the node starts alone, joins
    /// or starts a ring with `--peers` (the first path once dropped the linger).
    #[test]
    fn raft_flags_reach_the_settings_on_every_start() {
        let starts: [&[&str]; 3] = [
            &[],
            &["--join", "10.0.0.1:7001"],
            &[
                "--node-id",
                "1",
                "--peers",
                "1=127.0.0.1:7001,2=127.0.0.1:7002",
            ],
        ];
        for start in starts {
            let mut argv = vec![
                "kelemetry",
                "serve",
                "--wal-sync-linger-us",
                "250",
                "--raft-recent-entries-kib",
                "8",
            ];
            argv.extend_from_slice(start);
            let cli = Cli::try_parse_from(&argv).unwrap();
            let Command::Serve(a) = cli.command else {
                panic!("serve")
            };
            let settings = a.raft_settings().unwrap();
            assert_eq!(
                settings.wal_sync_linger,
                Duration::from_micros(250),
                "{start:?}"
            );
            assert_eq!(settings.recent_entry_bytes, 8 << 10, "{start:?}");
        }
        let err =
            Cli::try_parse_from(["kelemetry", "serve", "--raft-recent-entries-kib", "100000"])
                .unwrap_err();
        assert!(
            err.to_string().contains("--raft-recent-entries-kib"),
            "{err}"
        );
    }
}
