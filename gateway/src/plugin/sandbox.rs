//! What a plugin instance can reach: nothing.
//!
//! A Rust or C standard library in the guest imports a handful of WASI interfaces (stdio, exit,
//! environment, clocks, random, and filesystem and sockets if they are touched). They are
//! linked so ordinary plugins load, but with no capability behind them: no environment
//! variables or arguments, no preopened directories, no network, output discarded, and clocks
//! frozen at the Unix epoch so time cannot become a side channel or a source of state.

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The per-call store data.
pub struct Sandbox {
    /// Built on first use: plugins made with the SDK import no WASI at all, and then never
    /// pay for a context.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limits: StoreLimits,
    /// Set when the guest asked for more memory than its cap, to tell an out-of-memory trap
    /// from other traps.
    pub hit_memory_limit: bool,
    /// The time the 0.2 clock gives, when fixed for a dry run.
    pub fixed_clock: Option<std::time::Duration>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("hit_memory_limit", &self.hit_memory_limit)
            .finish_non_exhaustive()
    }
}

struct FrozenWallClock;

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl Sandbox {
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(16)
                .tables(32)
                .memories(16)
                .build(),
            hit_memory_limit: false,
            fixed_clock: None,
        }
    }

    /// The 0.2 clock fixed at `at` (since the epoch), or the wall clock with `None`.
    pub fn with_clock(mut self, at: Option<std::time::Duration>) -> Self {
        self.fixed_clock = at;
        self
    }
}

fn capability_less_wasi() -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenWallClock)
        .monotonic_clock(FrozenMonotonicClock)
        .build()
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(capability_less_wasi),
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for Sandbox {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.hit_memory_limit = true;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
