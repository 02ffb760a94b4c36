//! Several pipelines in one process, as a configuration file's `[[pipeline]]` tables
//! describe them.
//!
//! Each pipeline is its own consumer group, runs its own loop, and commits its own
//! offsets, so a slow target or a rebalance in one never holds another's commits. What
//! they share: the write pool of each target (one writer, its connections and its
//! `concurrency` slots, however many pipelines write to it), the figures ([`Metrics`])
//! and the `/metrics` endpoint.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use kinflux_influx::CancellationToken;
use tokio::task::JoinSet;
use tracing::{error, info};

use super::builder::pool_of;
use super::from_config::writer_config;
use super::settlement::WritePool;
use super::{Pipeline, PipelineBuilder, PipelineError, RunSummary};
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;

/// The pipelines of a configuration file, run side by side in one process.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kinflux::{Bridge, CancellationToken, Config};
///
/// let config = Config::load("examples/pipelines.toml")?;
/// let bridge = Bridge::from_config(&config, |pipeline| pipeline)?;
/// let summary = bridge.run(CancellationToken::new()).await?;
/// println!("{} points written", summary.points_written);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Bridge {
    pipelines: Vec<Pipeline>,
    metrics: Arc<Metrics>,
    metrics_listen: Option<SocketAddr>,
}

impl Bridge {
    /// The bridge of every pipeline of `config`. `configure` is applied to each
    /// pipeline's builder before it is built (`until_caught_up`, `drain_timeout`, ...).
    pub fn from_config(
        config: &Config,
        configure: impl Fn(PipelineBuilder) -> PipelineBuilder,
    ) -> Result<Bridge, ConfigError> {
        let abort = CancellationToken::new();
        let pools = shared_pools(config, &abort)?;
        let metrics = Arc::new(Metrics::new());
        let mut pipelines = Vec::with_capacity(config.pipelines.len());
        for (i, p) in config.pipelines.iter().enumerate() {
            let mut builder = PipelineBuilder::from_pipeline_config(config, p)?;
            let targets = config
                .targets_of(p)
                .map(|t| super::builder::TargetSpec {
                    name: t.name.clone(),
                    key: t.key.clone(),
                    writer: writer_config(&t.influx),
                    routing: super::from_config::routing_of(&t.influx),
                    pool: pools.get(t.name.as_str()).cloned(),
                })
                .collect();
            // Targets first, so that `configure` may add more.
            builder = configure(
                builder
                    .targets(targets)
                    .shared_metrics(metrics.clone())
                    .shared_abort(abort.clone()),
            );
            // One endpoint serves every pipeline's figures; one pipeline writes the
            // self-metrics point (they are the whole process's).
            builder = builder.without_metrics_listen();
            if i > 0 {
                builder = builder.without_internal_metrics();
            }
            pipelines.push(builder.build().map_err(|e| p.within(e))?);
        }
        Ok(Bridge {
            pipelines,
            metrics,
            metrics_listen: config.metrics.listen,
        })
    }

    /// The figures of every pipeline together.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The names of the pipelines, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pipelines.iter().map(Pipeline::name)
    }

    /// Runs every pipeline until `stop` is cancelled (or each has caught up, with
    /// `until_caught_up`), then drains them all. The first pipeline that fails stops the
    /// others, and its error (naming the pipeline) is returned.
    pub async fn run(self, stop: CancellationToken) -> Result<RunSummary, PipelineError> {
        let started = Instant::now();
        let server = match self.metrics_listen {
            Some(addr) => Some(
                crate::metrics::serve(addr, self.metrics.clone(), stop.clone())
                    .await
                    .map_err(PipelineError::Metrics)?,
            ),
            None => None,
        };
        // A pipeline's failure stops the others, not the caller's token.
        let all = stop.child_token();
        let mut tasks = JoinSet::new();
        let single = self.pipelines.len() == 1;
        for pipeline in self.pipelines {
            let name = pipeline.name().to_owned();
            let all = all.clone();
            info!(pipeline = %name, "pipeline starting");
            tasks.spawn(async move { (name, pipeline.run(all).await) });
        }
        let mut first_error: Option<PipelineError> = None;
        while let Some(joined) = tasks.join_next().await {
            let failure = match joined {
                Ok((_, Ok(_))) => None,
                // A file's one pipeline fails as it always did.
                Ok((_, Err(e))) if single => Some(e),
                Ok((name, Err(e))) => {
                    error!(pipeline = %name, error = %e, "pipeline failed; stopping the others");
                    Some(PipelineError::Pipeline {
                        name,
                        source: Box::new(e),
                    })
                }
                Err(e) => Some(PipelineError::Internal(format!(
                    "a pipeline task failed: {e}"
                ))),
            };
            if let Some(e) = failure {
                all.cancel();
                first_error.get_or_insert(e);
            }
        }
        if let Some(server) = server {
            server.abort();
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let m = self.metrics.snapshot();
        Ok(RunSummary {
            records_in: m.records_in,
            points_written: m.points_written,
            dead_lettered: m.dead_lettered(),
            dropped: m.dropped,
            elapsed: started.elapsed(),
        })
    }
}

/// One write pool per target that some pipeline writes to, its requests sized for the
/// largest batch of those pipelines.
fn shared_pools(
    config: &Config,
    abort: &CancellationToken,
) -> Result<BTreeMap<String, WritePool>, ConfigError> {
    let mut pools = BTreeMap::new();
    for target in &config.targets {
        let users: Vec<_> = config
            .pipelines
            .iter()
            .filter(|p| p.targets.contains(&target.name))
            .collect();
        let Some(max_bytes) = users.iter().map(|p| p.batch.max_bytes).max() else {
            continue;
        };
        let pool = pool_of(
            &target.name,
            writer_config(&target.influx),
            max_bytes,
            abort.clone(),
        )
        .map_err(|e| ConfigError::invalid(target.key.clone(), e.to_string()))?;
        pools.insert(target.name.clone(), pool);
    }
    Ok(pools)
}
