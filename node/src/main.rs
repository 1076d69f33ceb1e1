//! `kelemetry`: control-plane tracing for Kubernetes.

use clap::Parser;
use kelemetry::cli::{Cli, Command};

/// mimalloc instead of glibc malloc: allocation was about a sixth of the write path's
/// CPU under load (many small, short-lived buffers per event across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube's client and the gRPC stack could each pick a rustls crypto provider;
    // one is installed for the whole process before either builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            kelemetry::logging::init(args.node.log_format);
            kelemetry::server::run(*args).await
        }
        Command::Cluster(cmd) => kelemetry::admin::run(&cmd),
    }
}
