//! `review-api loadtest` (filled in by the next step).

#[derive(clap::Args, Clone, Debug)]
pub struct Options {}

pub async fn run(_settings: crate::Settings, _cache_url: String, _opts: Options) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
