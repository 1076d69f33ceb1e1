//! `kelemetry`: control-plane tracing for Kubernetes.

use clap::Parser;
use kelemetry::cli::{Cli, Command};

kelemetry::node_allocator!();

fn main() -> anyhow::Result<()> {
    // kube's client and the gRPC stack could each pick a rustls crypto provider;
    // one is installed for the whole process before either builds a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Command::Serve(args) = &cli.command {
        runtime.max_blocking_threads(args.node.storage_threads as usize);
    }
    let runtime = runtime.build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                kelemetry::logging::init(args.node.log_format);
                kelemetry::server::run(*args).await
            }
            Command::Cluster(cmd) => kelemetry::admin::run(&cmd),
        }
    })
}
