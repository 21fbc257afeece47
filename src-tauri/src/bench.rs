//! `verbio bench`: load-tests the bridge with simulated calls over loopback.

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// Seconds each call lasts.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("benchmark failed: {0}")]
    Failed(String),
}

pub fn run(args: BenchArgs) -> Result<(), BenchError> {
    Err(BenchError::Failed(format!("not built yet ({args:?})")))
}
