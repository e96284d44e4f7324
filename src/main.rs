use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    attribution_bridge::cli::run().await
}
