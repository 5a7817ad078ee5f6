//! Rate limits and quotas on grants, held across replicas.
//!
//! A limit's truth is one row per grant in the database ([`LimitRow`]): the tokens left in a
//! bucket, or the calls taken in a quota's period. A replica *leases* a slice of it (tokens or
//! calls moved out of the row into this process) and admits calls from the slice with no
//! database round trip; a slice left unused for [`IDLE`] goes back, and so does everything at
//! shutdown. A lease moves tokens and calls, it never makes them: across any number of
//! replicas a quota is never exceeded, and a rate limit admits what one bucket would, plus at
//! most the tokens replicas held in slices when a window began (replicas × [`RATE_SLICE_MAX`]
//! at the very most; slices are an eighth of what is left, so a nearly empty bucket hands out
//! one token at a time). A replica that crashes loses its slices: fewer calls, never more.
//!
//! On SQLite there is one process: its rate limits are buckets in memory and exact (a restart
//! refills them); its quotas lease from the row like PostgreSQL's, exact too, since nothing
//! else takes from it.

mod bucket;
mod period;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::{from_micros, to_micros};
use crate::store::{LimitKind, LimitRow, Store, StoreError};
use crate::vault::Grant;
use crate::vault::grant::{Quota, QuotaPeriod, RateLimit};

/// A slice nobody drew from for this long goes back to the shared row.
pub const IDLE: Duration = Duration::from_secs(1);
/// Most tokens one lease takes.
pub const RATE_SLICE_MAX: i64 = 64;
/// Most quota calls one lease takes.
pub const QUOTA_SLICE_MAX: i64 = 1000;
/// How long a replica that found a limit spent refuses without asking again: other replicas'
/// unused slices may come back within [`IDLE`].
const RECHECK: Duration = Duration::from_secs(1);
/// A grant's state is dropped after this long unused, once it holds nothing.
const FORGET: Duration = Duration::from_secs(600);

/// Why a call was not admitted.
#[derive(Debug)]
pub enum Refusal {
    RateLimited {
        retry_after: Duration,
    },
    QuotaExceeded {
        resets_at: Option<DateTime<Utc>>,
    },
    /// The shared row could not be read or written: the limit cannot be checked.
    Store(StoreError),
}

/// One grant's limits and what this process holds of them.
#[derive(Debug)]
struct Slot {
    rate: Option<RateLimit>,
    quota: Option<Quota>,
    held: Mutex<Held>,
    /// One lease at a time per grant in this process; the calls behind it use its slice.
    leasing: tokio::sync::Mutex<()>,
}

/// Times are microseconds since the epoch.
#[derive(Debug, Default)]
struct Held {
    /// SQLite: the bucket itself (micro-tokens and when last refilled).
    bucket: Option<LimitRow>,
    /// PostgreSQL: whole tokens leased and not yet used.
    tokens: i64,
    /// The bucket was found empty: refused here without asking again until then (a second
    /// at most: other replicas' unused slices may come back sooner than a token is due)...
    dry_until: i64,
    /// ...and told to retry at this time, when the bucket has its next token.
    next_token: i64,
    /// Quota calls leased and not yet used, for the period that began at `period`.
    calls: i64,
    period: i64,
    /// The quota was found spent for `period`; not asked again before then.
    spent_until: i64,
    last_used: i64,
}

/// A slice of a shared bucket: whole tokens, and when the bucket has its next one if none.
struct TokenLease {
    granted: i64,
    wait: i64,
}

/// A slice of a quota: calls, for the period that began at `began`, which ends at `reset`.
struct CallLease {
    granted: i64,
    began: i64,
    reset: i64,
}

/// What this process can decide alone.
enum Local {
    Admitted,
    Refused(Refusal),
    Lease { rate: bool, quota: bool },
}

#[derive(Debug)]
pub struct Limiter {
    store: Arc<dyn Store>,
    /// Rate limits lease from the shared row (many processes on one database) rather than
    /// living in memory.
    shared: bool,
    slots: RwLock<HashMap<Uuid, Arc<Slot>>>,
    /// Counts leases: the database round trips limits cost.
    leases: Counter,
}

impl Limiter {
    /// A limiter over `store`, counting its leases in `leases`, and its task returning idle
    /// slices (it ends with the limiter).
    pub fn start(store: Arc<dyn Store>, leases: Counter) -> Arc<Self> {
        let limiter = Arc::new(Self {
            shared: store.backend() == "postgres",
            store,
            slots: RwLock::default(),
            leases,
        });
        tokio::spawn(settle_loop(Arc::downgrade(&limiter)));
        limiter
    }

    /// Counts the call against the grant's limits, or says why it may not be made. A grant
    /// without limits costs one branch.
    pub async fn admit(&self, grant: &Grant) -> Result<(), Refusal> {
        if !grant.grant_policy.is_limited() {
            return Ok(());
        }
        self.admit_at(grant, now()).await
    }

    /// `admit`, at `now` (microseconds since the epoch).
    async fn admit_at(&self, grant: &Grant, now: i64) -> Result<(), Refusal> {
        // The common call: decided under the map's read lock, from what this process holds.
        if let Some(slot) = read(&self.slots).get(&grant.grant_id)
            && let Some(done) = slot.decide(self.shared, now)
        {
            return done;
        }
        let slot = self.slot(grant, now);
        if let Some(done) = slot.decide(self.shared, now) {
            return done;
        }
        let _leasing = slot.leasing.lock().await;
        // Whoever held the lock before may have leased enough for this call too.
        let (rate, quota) = match slot.take(self.shared, now) {
            Local::Admitted => return Ok(()),
            Local::Refused(refusal) => return Err(refusal),
            Local::Lease { rate, quota } => (rate, quota),
        };
        let tokens = match rate {
            true => Some(
                self.lease_tokens(grant.grant_id, &slot, now)
                    .await
                    .map_err(Refusal::Store)?,
            ),
            false => None,
        };
        if let Some(lease) = &tokens
            && quota
        {
            // Held before the quota is asked, so that a failure there loses nothing: until a
            // quota slice joins them no call can take these tokens (each needs a call too),
            // and unused they go back like any other slice.
            add_tokens(&mut lock(&slot.held), lease, now);
        }
        let calls = match quota {
            true => Some(
                self.lease_calls(grant.grant_id, &slot, now)
                    .await
                    .map_err(Refusal::Store)?,
            ),
            false => None,
        };
        // The fresh slices join what this process holds and this call takes its unit in one
        // locked step: no call on the fast path can take them first.
        let mut held = lock(&slot.held);
        if let Some(lease) = &tokens
            && !quota
        {
            add_tokens(&mut held, lease, now);
        }
        if let Some(lease) = calls {
            if held.period != lease.began {
                held.calls = 0;
                held.period = lease.began;
            }
            held.calls += lease.granted;
            if lease.granted == 0 {
                held.spent_until = (now + RECHECK.as_micros() as i64).min(lease.reset);
            }
        }
        held.last_used = held.last_used.max(now);
        match slot.take_held(&mut held, self.shared, now) {
            Local::Admitted => Ok(()),
            Local::Refused(refusal) => Err(refusal),
            Local::Lease { .. } => Err(Refusal::Store(StoreError::Corrupt(
                "a lease left the limit undecided".into(),
            ))),
        }
    }

    /// The grant's slot, made at `now` if it is new.
    fn slot(&self, grant: &Grant, now: i64) -> Arc<Slot> {
        if let Some(slot) = read(&self.slots).get(&grant.grant_id) {
            return slot.clone();
        }
        let mut slots = self.slots.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .entry(grant.grant_id)
            .or_insert_with(|| {
                Arc::new(Slot {
                    rate: grant.grant_policy.rate_limit,
                    quota: grant.grant_policy.quota,
                    held: Mutex::new(Held {
                        // Not idle yet: a sweep before the first lease must not forget it.
                        last_used: now,
                        ..Held::default()
                    }),
                    leasing: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// Takes a slice of the shared bucket (none when it holds no whole token), for the caller
    /// to add to what this process holds.
    async fn lease_tokens(&self, grant: Uuid, slot: &Slot, now: i64) -> Result<TokenLease, StoreError> {
        let Some(limit) = slot.rate else {
            return Ok(TokenLease { granted: 0, wait: 0 });
        };
        let most = (i64::from(limit.requests) / 16).clamp(1, RATE_SLICE_MAX);
        let (mut granted, mut wait) = (0, 0);
        self.leases.inc();
        self.store
            .update_limit(grant, LimitKind::Rate, &mut |row| {
                let full = LimitRow {
                    value: bucket::capacity(&limit),
                    at: now,
                };
                let now_row = row.map_or(full, |r| bucket::refill(&limit, r.value, r.at, now));
                granted = bucket::slice(bucket::whole(&limit, now_row.value), most);
                let left = now_row.value - granted * bucket::token(&limit);
                wait = if granted == 0 {
                    bucket::until_token(&limit, left)
                } else {
                    0
                };
                LimitRow { value: left, ..now_row }
            })
            .await?;
        Ok(TokenLease { granted, wait })
    }

    /// Takes a slice of the quota's current period (none when it is spent), for the caller to
    /// add to what this process holds.
    async fn lease_calls(&self, grant: Uuid, slot: &Slot, now: i64) -> Result<CallLease, StoreError> {
        let Some(quota) = slot.quota else {
            return Ok(CallLease {
                granted: 0,
                began: 0,
                reset: i64::MAX,
            });
        };
        let began = to_micros(period::start(quota.period, from_micros(now)));
        let calls = i64::try_from(quota.calls).unwrap_or(i64::MAX);
        let most = (calls / 16).clamp(1, QUOTA_SLICE_MAX);
        let mut granted = 0;
        self.leases.inc();
        self.store
            .update_limit(grant, LimitKind::Quota, &mut |row| {
                // A row of an earlier period starts over; one a replica with a clock ahead
                // already moved on is counted as it is.
                let (used, at) = match row {
                    Some(r) if r.at >= began => (r.value, r.at),
                    _ => (0, began),
                };
                granted = bucket::slice((calls - used).max(0), most);
                LimitRow {
                    value: used + granted,
                    at,
                }
            })
            .await?;
        let reset = period::reset(quota.period, from_micros(began)).map_or(i64::MAX, to_micros);
        Ok(CallLease { granted, began, reset })
    }

    /// Returns what `slot` holds to the shared rows: all of it with `everything`, else only
    /// slices idle for [`IDLE`].
    async fn give_back(&self, grant: Uuid, slot: &Slot, now: i64, everything: bool) -> Result<(), StoreError> {
        let (tokens, calls, period) = {
            let mut held = lock(&slot.held);
            if !everything && now - held.last_used < IDLE.as_micros() as i64 {
                return Ok(());
            }
            let out = (held.tokens, held.calls, held.period);
            held.tokens = 0;
            held.calls = 0;
            out
        };
        if let Some(limit) = slot.rate
            && tokens > 0
        {
            self.store
                .update_limit(grant, LimitKind::Rate, &mut |row| {
                    let full = bucket::capacity(&limit);
                    let back = tokens * bucket::token(&limit);
                    match row.map(|r| bucket::refill(&limit, r.value, r.at, now)) {
                        Some(r) if r.value + back < full => LimitRow {
                            value: r.value + back,
                            at: r.at,
                        },
                        _ => LimitRow { value: full, at: now },
                    }
                })
                .await?;
        }
        if slot.quota.is_some() && calls > 0 {
            self.store
                .update_limit(grant, LimitKind::Quota, &mut |row| match row {
                    // Calls of a period that has ended are not owed to the next one.
                    Some(r) if r.at == period => LimitRow {
                        value: (r.value - calls).max(0),
                        at: r.at,
                    },
                    Some(r) => r,
                    None => LimitRow { value: 0, at: period },
                })
                .await?;
        }
        Ok(())
    }

    /// Returns idle slices; forgets grants unused for long that hold nothing.
    async fn settle(&self, everything: bool) {
        let now = now();
        let slots: Vec<(Uuid, Arc<Slot>)> = read(&self.slots).iter().map(|(id, s)| (*id, s.clone())).collect();
        for (grant, slot) in slots {
            if let Err(e) = self.give_back(grant, &slot, now, everything).await {
                tracing::warn!(%grant, error = %e, "could not return a grant's unused limit slice; it is lost until the period ends or the bucket refills");
            }
        }
        let mut slots = self.slots.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.retain(|_, slot| {
            // A call still holds it (it may be leasing into it right now): a slot dropped
            // from the map then would keep that slice where nothing ever gives it back.
            if Arc::strong_count(slot) > 1 {
                return true;
            }
            let held = lock(&slot.held);
            // A bucket in memory that has not refilled is still owed its wait.
            let refilling = match (slot.rate, held.bucket) {
                (Some(limit), Some(b)) => bucket::refill(&limit, b.value, b.at, now).value < bucket::capacity(&limit),
                _ => false,
            };
            held.tokens > 0 || held.calls > 0 || refilling || now - held.last_used < FORGET.as_micros() as i64
        });
    }

    /// Returns every slice this process holds, at shutdown, so the other replicas (or the
    /// next start) can use them.
    pub async fn release_all(&self) {
        self.settle(true).await;
    }

    /// How much of its limits a grant has used, as this process and the shared rows know it.
    pub async fn usage(&self, grant: &Grant) -> Result<Usage, StoreError> {
        let now = now();
        let slot = read(&self.slots).get(&grant.grant_id).cloned();
        let (local_bucket, held_tokens, held_calls, held_period) = slot.as_ref().map_or((None, 0, 0, 0), |slot| {
            let held = lock(&slot.held);
            (held.bucket, held.tokens, held.calls, held.period)
        });
        let rate_limit = match grant.grant_policy.rate_limit {
            None => None,
            Some(limit) => {
                let value = match (self.shared, local_bucket) {
                    (false, Some(b)) => bucket::refill(&limit, b.value, b.at, now).value,
                    (false, None) => bucket::capacity(&limit),
                    (true, _) => {
                        let row = self.store.limit_row(grant.grant_id, LimitKind::Rate).await?;
                        row.map_or(bucket::capacity(&limit), |r| {
                            bucket::refill(&limit, r.value, r.at, now).value
                        }) + held_tokens * bucket::token(&limit)
                    }
                };
                Some(RateUsage {
                    requests: limit.requests,
                    per_seconds: limit.per_seconds,
                    available: bucket::whole(&limit, value).max(0) as u64,
                })
            }
        };
        let quota = match grant.grant_policy.quota {
            None => None,
            Some(quota) => {
                let began = period::start(quota.period, from_micros(now));
                let row = self.store.limit_row(grant.grant_id, LimitKind::Quota).await?;
                let taken = row.filter(|r| r.at >= to_micros(began)).map_or(0, |r| r.value);
                let unused_here = if held_period == to_micros(began) { held_calls } else { 0 };
                let used = (taken - unused_here).max(0) as u64;
                Some(QuotaUsage {
                    calls: quota.calls,
                    period: quota.period,
                    used,
                    remaining: quota.calls.saturating_sub(used),
                    period_started_at: began,
                    resets_at: period::reset(quota.period, began),
                })
            }
        };
        Ok(Usage { rate_limit, quota })
    }
}

impl Slot {
    /// `take`, for a caller that cannot lease: the answer, or `None` to lease first.
    fn decide(&self, shared: bool, now: i64) -> Option<Result<(), Refusal>> {
        match self.take(shared, now) {
            Local::Admitted => Some(Ok(())),
            Local::Refused(refusal) => Some(Err(refusal)),
            Local::Lease { .. } => None,
        }
    }

    /// Takes one token and one call from what this process holds, both or neither.
    fn take(&self, shared: bool, now: i64) -> Local {
        self.take_held(&mut lock(&self.held), shared, now)
    }

    fn take_held(&self, held: &mut Held, shared: bool, now: i64) -> Local {
        let mut lease_rate = false;
        let mut lease_quota = false;
        if let Some(limit) = self.rate {
            if shared {
                if held.tokens == 0 {
                    if held.dry_until > now {
                        return Local::Refused(rate_limited(held.next_token - now));
                    }
                    lease_rate = true;
                }
            } else {
                let bucket = held.bucket.get_or_insert(LimitRow {
                    value: bucket::capacity(&limit),
                    at: now,
                });
                *bucket = bucket::refill(&limit, bucket.value, bucket.at, now);
                if bucket.value < bucket::token(&limit) {
                    return Local::Refused(rate_limited(bucket::until_token(&limit, bucket.value)));
                }
            }
        }
        if let Some(quota) = self.quota {
            let began = to_micros(period::start(quota.period, from_micros(now)));
            if held.period != began {
                // A new period: slices of the last one are void.
                held.calls = 0;
                held.period = began;
                held.spent_until = 0;
            }
            if held.calls == 0 {
                if held.spent_until > now {
                    return Local::Refused(Refusal::QuotaExceeded {
                        resets_at: period::reset(quota.period, from_micros(began)),
                    });
                }
                lease_quota = true;
            }
        }
        if lease_rate || lease_quota {
            return Local::Lease {
                rate: lease_rate,
                quota: lease_quota,
            };
        }
        if let Some(limit) = self.rate {
            if shared {
                held.tokens -= 1;
            } else if let Some(bucket) = held.bucket.as_mut() {
                bucket.value -= bucket::token(&limit);
            }
        }
        if self.quota.is_some() {
            held.calls -= 1;
        }
        held.last_used = held.last_used.max(now);
        Local::Admitted
    }
}

/// A token lease joins what this process holds; an empty one says the bucket is dry.
fn add_tokens(held: &mut Held, lease: &TokenLease, now: i64) {
    held.tokens += lease.granted;
    // Fresh, not idle: the sweep must not hand them back before this call takes one.
    held.last_used = held.last_used.max(now);
    if lease.granted == 0 {
        held.next_token = now + lease.wait.max(1);
        held.dry_until = held.next_token.min(now + RECHECK.as_micros() as i64);
    }
}

fn rate_limited(wait_micros: i64) -> Refusal {
    Refusal::RateLimited {
        retry_after: Duration::from_micros(wait_micros.max(1) as u64),
    }
}

/// A grant's limits and how much of them is used.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaUsage>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RateUsage {
    pub requests: u32,
    pub per_seconds: u32,
    /// Calls that could be made at once now.
    pub available: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QuotaUsage {
    pub calls: u64,
    pub period: QuotaPeriod,
    /// Calls made in the current period. Across replicas, calls another replica has leased
    /// but not made count as used until it returns them (within a second of going idle).
    pub used: u64,
    pub remaining: u64,
    pub period_started_at: DateTime<Utc>,
    /// Absent for `total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<DateTime<Utc>>,
}

async fn settle_loop(limiter: Weak<Limiter>) {
    let mut tick = tokio::time::interval(IDLE / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(limiter) = limiter.upgrade() else { return };
        limiter.settle(false).await;
    }
}

/// Microseconds since the epoch, as [`crate::clock`] keeps time.
fn now() -> i64 {
    Utc::now().timestamp_micros()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DatabaseUrl;
    use crate::vault::grant::GrantPolicyInput;

    const SECOND: i64 = 1_000_000;

    async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = DatabaseUrl::new(format!("sqlite:{}", dir.path().join("credgate.db").display()));
        crate::store::connect(&url).await.unwrap()
    }

    /// A limiter as one process on `store`, or as one of several replicas (`shared`).
    fn limiter(store: &Arc<dyn Store>, shared: bool) -> Limiter {
        Limiter {
            store: store.clone(),
            shared,
            slots: RwLock::default(),
            leases: Counter::default(),
        }
    }

    fn grant(rate_limit: Option<RateLimit>, quota: Option<Quota>) -> Grant {
        let mut policy = GrantPolicyInput::default().resolve(crate::clock::now()).unwrap();
        policy.rate_limit = rate_limit;
        policy.quota = quota;
        Grant {
            grant_id: Uuid::new_v4(),
            secret_id: Uuid::new_v4(),
            principal_id: Uuid::new_v4(),
            grant_policy: policy,
            created_at: crate::clock::now(),
            revoked_at: None,
            revoked_reason: None,
        }
    }

    fn at(text: &str) -> i64 {
        to_micros(text.parse().unwrap())
    }

    #[tokio::test]
    async fn one_process_bucket_is_exact_and_says_when_to_retry() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let limiter = limiter(&store, false);
        let g = grant(
            Some(RateLimit {
                requests: 3,
                per_seconds: 60,
            }),
            None,
        );
        let t = at("2026-12-06T10:00:00Z");
        for _ in 0..3 {
            limiter.admit_at(&g, t).await.unwrap();
        }
        match limiter.admit_at(&g, t).await {
            Err(Refusal::RateLimited { retry_after }) => assert_eq!(retry_after, Duration::from_secs(20)),
            other => panic!("{other:?}"),
        }
        // A token every 20 s: one more at +20 s, not two.
        limiter.admit_at(&g, t + 20 * SECOND).await.unwrap();
        assert!(limiter.admit_at(&g, t + 20 * SECOND).await.is_err());
        assert_eq!(limiter.leases.get(), 0, "a bucket in memory never asks the database");
    }

    #[tokio::test]
    async fn a_quota_is_spent_then_resets_with_its_period() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let limiter = limiter(&store, false);
        let g = grant(
            None,
            Some(Quota {
                calls: 2,
                period: QuotaPeriod::Hour,
            }),
        );
        let t = at("2026-12-06T10:15:00Z");
        limiter.admit_at(&g, t).await.unwrap();
        limiter.admit_at(&g, t + SECOND).await.unwrap();
        match limiter.admit_at(&g, t + 2 * SECOND).await {
            Err(Refusal::QuotaExceeded { resets_at }) => {
                assert_eq!(resets_at, Some("2026-12-06T11:00:00Z".parse().unwrap()))
            }
            other => panic!("{other:?}"),
        }
        // The next hour starts over, in this process and in the row.
        limiter.admit_at(&g, at("2026-12-06T11:00:01Z")).await.unwrap();
        let row = store.limit_row(g.grant_id, LimitKind::Quota).await.unwrap().unwrap();
        assert_eq!(row.at, at("2026-12-06T11:00:00Z"));
        // And a second process on the same database (a restart) sees what was used.
        let restarted = limiter_after_release(&limiter, &store).await;
        restarted.admit_at(&g, at("2026-12-06T11:30:00Z")).await.unwrap();
        assert!(matches!(
            restarted.admit_at(&g, at("2026-12-06T11:30:01Z")).await,
            Err(Refusal::QuotaExceeded { .. })
        ));
    }

    async fn limiter_after_release(old: &Limiter, store: &Arc<dyn Store>) -> Limiter {
        old.release_all().await;
        limiter(store, false)
    }

    #[tokio::test]
    async fn replicas_lease_slices_and_never_admit_more_than_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (a, b) = (limiter(&store, true), limiter(&store, true));
        let g = grant(
            Some(RateLimit {
                requests: 80,
                per_seconds: 86_400,
            }),
            None,
        );
        let t = at("2026-12-06T10:00:00Z");
        // `a` leases a slice of five and uses one.
        a.admit_at(&g, t).await.unwrap();
        assert_eq!(lock(&a.slot(&g, 0).held).tokens, 4);
        // `b` gets what is left in the row, then nothing.
        let mut admitted_b = 0;
        while b.admit_at(&g, t).await.is_ok() {
            admitted_b += 1;
        }
        assert_eq!(admitted_b, 75);
        // Far fewer leases than calls: slices of five, then smaller near the end.
        assert!(b.leases.get() < 40, "{} leases for 75 calls", b.leases.get());
        for _ in 0..4 {
            a.admit_at(&g, t).await.unwrap();
        }
        assert!(matches!(a.admit_at(&g, t).await, Err(Refusal::RateLimited { .. })));
        // Told to retry when the next token is due (86400 / 80 = 1080 s); refused here
        // without asking the database for a second, then asked again.
        let leases = a.leases.get();
        match a.admit_at(&g, t + SECOND / 2).await {
            Err(Refusal::RateLimited { retry_after }) => {
                assert_eq!(
                    retry_after,
                    Duration::from_micros(1080 * SECOND as u64 - SECOND as u64 / 2)
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.leases.get(), leases);
        assert!(a.admit_at(&g, t + 2 * SECOND).await.is_err());
        assert_eq!(a.leases.get(), leases + 1);
        a.admit_at(&g, t + 1080 * SECOND).await.unwrap();
    }

    /// A call leasing into a new grant's slot while the idle-slice sweep runs: the slice it
    /// leases must stay where the sweep finds it, or it is never given back.
    #[tokio::test]
    async fn a_sweep_during_a_first_lease_keeps_the_slot_the_call_fills() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (a, b) = (limiter(&store, true), limiter(&store, true));
        let g = grant(
            None,
            Some(Quota {
                calls: 40,
                period: QuotaPeriod::Total,
            }),
        );
        // The call has made the slot and is about to lease into it...
        let in_flight = a.slot(&g, 0);
        // ...when the sweep runs: the slot holds nothing yet, but it is not forgotten.
        a.settle(false).await;
        assert!(
            Arc::ptr_eq(&in_flight, &a.slot(&g, 0)),
            "the sweep dropped a slot a call was filling"
        );
        drop(in_flight);
        let t = to_micros(crate::clock::now());
        a.admit_at(&g, t).await.unwrap();
        // Everything `a` did not use is found and returned at shutdown, for `b` to use.
        a.release_all().await;
        let mut admitted_b = 0;
        while b.admit_at(&g, t).await.is_ok() {
            admitted_b += 1;
        }
        assert_eq!(admitted_b, 39);
    }

    #[tokio::test]
    async fn unused_slices_go_back_for_the_other_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (a, b) = (limiter(&store, true), limiter(&store, true));
        let g = grant(
            None,
            Some(Quota {
                calls: 40,
                period: QuotaPeriod::Total,
            }),
        );
        let t = to_micros(crate::clock::now());
        a.admit_at(&g, t).await.unwrap();
        assert_eq!(lock(&a.slot(&g, 0).held).calls, 1, "a slice of two (40 / 16), one used");
        // Not idle yet: kept.
        a.give_back(g.grant_id, &a.slot(&g, 0), t, false).await.unwrap();
        assert_eq!(lock(&a.slot(&g, 0).held).calls, 1);
        a.give_back(g.grant_id, &a.slot(&g, 0), t + IDLE.as_micros() as i64, false)
            .await
            .unwrap();
        let mut admitted_b = 0;
        while b.admit_at(&g, t).await.is_ok() {
            admitted_b += 1;
        }
        assert_eq!(admitted_b, 39, "everything `a` did not use");
        b.release_all().await;
        assert_eq!(b.usage(&g).await.unwrap().quota.unwrap().used, 40);
        assert_eq!(
            store
                .limit_row(g.grant_id, LimitKind::Quota)
                .await
                .unwrap()
                .unwrap()
                .value,
            40
        );
    }
}
