//! `kelemetry`: control-plane tracing for Kubernetes.

use clap::Parser;
use kelemetry::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            kelemetry::logging::init(args.node.log_format);
            kelemetry::server::run(*args).await
        }
        Command::Cluster(cmd) => kelemetry::admin::run(&cmd),
    }
}
