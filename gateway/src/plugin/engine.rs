//! The Wasm engine: compilation settings, the instance pool, limits and the epoch ticker, set
//! in one place.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::sandbox::Sandbox;

/// How often the epoch advances: the granularity of call deadlines.
const TICK: Duration = Duration::from_millis(2);

/// Sandbox limits, per call.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A call that runs longer is interrupted. Default 100 ms: injection is a few string
    /// operations, so anything near this is a runaway.
    pub deadline: Duration,
    /// Linear memory per instance. Default 16 MiB.
    pub memory_bytes: usize,
    /// Wasm stack per call. Default 512 KiB.
    pub stack_bytes: usize,
    /// Instances that may run at once (slots in the pooling allocator). Default 256.
    pub concurrent_instances: u32,
    /// The time 0.2 plugins read, fixed (since the Unix epoch), for a reproducible dry run
    /// (`credgate provider check --now`); `None`: the wall clock.
    pub fixed_clock: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 16 << 20,
            stack_bytes: 512 << 10,
            concurrent_instances: 256,
            fixed_clock: None,
        }
    }
}

pub struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<Sandbox>,
    pub limits: Limits,
    /// Whether the pooling allocator is in use (it is, where the machine allows it).
    pub pooling: bool,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("limits", &self.limits)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

fn config(limits: &Limits, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits.stack_bytes);
    // The fiber a call runs on needs room for the Wasm stack plus the host's own frames.
    config.async_stack_size(limits.stack_bytes + (256 << 10));
    config.cranelift_opt_level(OptLevel::Speed);
    // A small reservation per memory: plugin memories are capped far below 4 GiB, so there is
    // no need to reserve 4 GiB of address space for each pooled slot.
    config.memory_reservation(limits.memory_bytes as u64);
    config.memory_guard_size(64 << 10);
    config.memory_reservation_for_growth(0);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let n = limits.concurrent_instances;
        pool.total_component_instances(n);
        pool.total_core_instances(n * 4);
        pool.total_memories(n * 2);
        pool.total_tables(n * 4);
        pool.total_stacks(n);
        pool.max_memory_size(limits.memory_bytes);
        pool.max_core_instances_per_component(8);
        pool.max_memories_per_component(2);
        pool.max_tables_per_component(4);
        // Reset a slot by writing zeros over what a call touched rather than handing pages
        // back to the kernel: the next call then does not fault them in again. Plugins touch
        // little, so this keeps instantiation in the microseconds.
        pool.linear_memory_keep_resident(256 << 10);
        pool.table_keep_resident(64 << 10);
        pool.async_stack_keep_resident(64 << 10);
        pool.decommit_batch_size(32);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

impl PluginEngine {
    /// Builds the engine (pooling where the machine allows it), links the capability-less
    /// WASI, and starts the epoch ticker, which stops when the engine is dropped.
    pub fn new(limits: Limits) -> anyhow::Result<Arc<Self>> {
        let (engine, pooling) = match Engine::new(&config(&limits, true)) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(error = %e, "the pooling allocator is not available here; allocating plugin instances on demand");
                (
                    Engine::new(&config(&limits, false)).map_err(|e| anyhow::anyhow!("{e:#}"))?,
                    false,
                )
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        // What the 0.2 contract grants (crypto, clock, random); 0.1 components import none of it.
        super::bindings::Provider::add_to_linker::<Sandbox, wasmtime::component::HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("credgate-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        Ok(Arc::new(Self {
            engine,
            linker,
            limits,
            pooling,
        }))
    }

    /// The deadline in epoch ticks (at least two, so a call never starts already expired).
    pub fn deadline_ticks(&self) -> u64 {
        (self.limits.deadline.as_millis() / TICK.as_millis()).max(2) as u64
    }
}
