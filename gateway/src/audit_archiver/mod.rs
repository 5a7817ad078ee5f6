//! Retention: with `--audit-retain-days N`, records older than N days leave the database for
//! archive files, one per UTC day, each proven by a signed checkpoint kept in the database
//! (see [`crate::audit::archive`] and [`crate::audit::Checkpoint`]).
//!
//! A pass, every few minutes on one replica at a time (a lease in the database):
//! 1. the newest checkpoint, checked against the trail's signing key; records it covers that a
//!    crash left in the database are deleted first;
//! 2. while the record after the last cut was made on a day older than the cut-off: the run of
//!    records from it up to the first record of a later day is read in pages, verified as it is
//!    read (a trail that does not verify is never signed), and written to a temporary file that
//!    is flushed to disk and renamed;
//! 3. its checkpoint is signed and stored with an `audit.archive` record, in one transaction;
//! 4. the records are deleted in small transactions of their own;
//! 5. the live trail's newest record is sealed: signed and appended to the heads file in the
//!    archive directory ([`crate::audit::head`]). Every pass first checks that the newest seal
//!    still matches the database (step 1's check, for the live part), so a rewrite of the live
//!    trail stops archiving and sealing until someone looks.
//!
//! Nothing here is on a call's path: a call's record goes to the journal as always, and the
//! indexer waits at most one small delete for the database's write lock. The newest record
//! always stays, so the live chain keeps its head whatever is archived.

mod signing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::archive::{ArchiveWriter, WrittenFile, file_name, span_of, write_line};
use crate::audit::head::{self, HEADS_FILE, SealedHead};
use crate::audit::{
    AuditEvent, AuditKind, AuditSigner, Checkpoint, GENESIS, StoredAudit, VerifyReport, verify_records,
};
use crate::clock::{from_micros, now, to_micros};
use crate::crypto::KeyRing;
use crate::store::{Store, StoreError};

pub use signing::{load_or_create_signer, load_signer};

/// Records read, verified and written at a time.
const PAGE: i64 = 10_000;
/// Records deleted per transaction: a few milliseconds of the database's write lock.
const PRUNE_BATCH: i64 = 5_000;
/// How long a pass's lease lasts without renewal (it is renewed after every file).
const LEASE: Duration = Duration::from_secs(600);
const DAY_MICROS: i64 = 86_400_000_000;

#[derive(Clone, Debug)]
pub struct RetentionOptions {
    /// Records are kept in the database at least this many days.
    pub retain_days: u32,
    /// Where archive files are written (shared by replicas that share the database).
    pub dir: PathBuf,
    /// Time between passes.
    pub every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the archive file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the trail does not verify, so it is not archived: {0}")]
    Chain(String),
    #[error("the trail's signing key: {0}")]
    Key(String),
    #[error("the checkpoint ending at record {0} is not signed by the trail's key: nothing more is archived after it")]
    Forged(i64),
    #[error("another replica took over archiving (this pass ran past its lease)")]
    LeaseLost,
    #[error("the sealed heads: {0}")]
    Heads(String),
    #[error(
        "the archiving lease is held until {0}, longer than any pass holds it (the row was changed): nothing is archived or sealed"
    )]
    LeaseHeld(DateTime<Utc>),
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct Archived {
    /// The files written, as their checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// Records deleted from the database.
    pub pruned: u64,
    /// The head this pass sealed (none if nothing was added since the last seal).
    pub sealed: Option<SealedHead>,
    /// Whether this process held the lease and ran the pass.
    pub ran: bool,
}

/// Archives every whole UTC day that ended before `cutoff`. `holder` names this process for
/// the lease; a pass that finds the lease held elsewhere does nothing.
pub async fn archive_before(
    store: &dyn Store,
    ring: &KeyRing,
    dir: &Path,
    cutoff: DateTime<Utc>,
    holder: Uuid,
) -> Result<Archived, ArchiveError> {
    if !store.take_archive_lease(holder, now(), now() + LEASE).await? {
        // Another replica's pass, unless the row reaches further than any pass renews it
        // (clocks a lease apart): written so that no pass runs, and nothing is sealed again.
        return match store.archive_lease_until().await? {
            Some(until) if until > now() + LEASE * 2 => Err(ArchiveError::LeaseHeld(until)),
            _ => Ok(Archived::default()),
        };
    }
    let result = pass(store, ring, dir, cutoff, holder).await;
    store.release_archive_lease(holder).await?;
    result.map(|done| Archived { ran: true, ..done })
}

async fn pass(
    store: &dyn Store,
    ring: &KeyRing,
    dir: &Path,
    cutoff: DateTime<Utc>,
    holder: Uuid,
) -> Result<Archived, ArchiveError> {
    let mut done = Archived::default();
    let checkpoints = store.audit_checkpoints().await?;
    // Made at the first file or seal, if there is none yet.
    let mut signer = load_signer(store, ring).await?;
    let (mut after_seq, mut after_hash) = match checkpoints.last() {
        Some(last) => {
            // Whoever could write a checkpoint without the key could make the live trail start
            // anywhere: never build on one that is not ours.
            if !signer.as_ref().is_some_and(|s| last.signed_by(&s.info.public_key)) {
                return Err(ArchiveError::Forged(last.last_seq));
            }
            (last.last_seq, last.head_hash.clone())
        }
        None => (0, GENESIS.to_owned()),
    };
    done.pruned += prune(store, after_seq, holder).await?;
    set_aside_unsigned(dir, after_seq);
    let sealed = check_sealed_head(store, dir, signer.as_ref(), after_seq).await?;
    let Some((head_seq, _)) = store.audit_head().await? else {
        return Ok(done);
    };
    let cutoff = to_micros(cutoff);
    // Each file is the run of records after the last cut whose `at` falls before the end of
    // the day of the run's first record: a record appended late (a long call's, or one
    // recovered from a replica's journal after an outage) stays with its neighbours in the
    // chain, and a record of a later day ends the run, so nothing leaves the database before
    // its day is past the retention.
    while let Some(next) = store.audit_chain(after_seq, 1).await?.pop() {
        let day_start = next.at.div_euclid(DAY_MICROS) * DAY_MICROS;
        let day_end = day_start + DAY_MICROS;
        if day_end > cutoff {
            break;
        }
        // At most the last record made that day; never the newest record of all.
        let bound = store
            .audit_last_seq_before(day_end)
            .await?
            .unwrap_or(after_seq)
            .min(head_seq - 1);
        if bound <= after_seq {
            break;
        }
        let signer = match &signer {
            Some(s) => s,
            None => signer.insert(load_or_create_signer(store, ring).await?),
        };
        let period = from_micros(day_start).format("%Y-%m-%d").to_string();
        let span = Span {
            period: &period,
            after_seq,
            after_hash: &after_hash,
            bound,
            day_end,
            sealed: sealed.as_ref().map(|h| (h.seq, h.hash.as_str())),
        };
        let mut checkpoint = write_period(store, dir, &span, holder).await?;
        signer.sign(&mut checkpoint);
        let mut event = AuditEvent::new(AuditKind::Admin, "audit.archive", "ok");
        event.actor = Some("system".into());
        event.target = Some(checkpoint.file.clone());
        event.message = Some(format!(
            "records {} to {} ({}) moved to {}",
            checkpoint.first_seq, checkpoint.last_seq, checkpoint.period, checkpoint.file
        ));
        renew(store, holder).await?;
        store.insert_audit_checkpoint(&checkpoint, &event).await?;
        tracing::info!(
            file = %checkpoint.file,
            first_seq = checkpoint.first_seq,
            last_seq = checkpoint.last_seq,
            "archived a day of the audit trail"
        );
        after_seq = checkpoint.last_seq;
        after_hash.clone_from(&checkpoint.head_hash);
        done.checkpoints.push(checkpoint);
        done.pruned += prune(store, after_seq, holder).await?;
    }
    let signer = match signer {
        Some(s) => s,
        None => load_or_create_signer(store, ring).await?,
    };
    renew(store, holder).await?;
    // From the last seal, or from the newest file's end once the last seal is archived (each
    // file holding it was checked to hold it with its sealed hash).
    let from = match &sealed {
        Some(h) if h.seq > after_seq => (h.seq, h.hash.clone()),
        _ => (after_seq, after_hash),
    };
    done.sealed = seal_head(store, dir, &signer, from, holder).await?;
    Ok(done)
}

/// The newest sealed head, if its record is still in the database with the hash it was sealed
/// with (or has been archived since: its checkpoint proves it from then on). A record gone or
/// changed means the live trail was cut back or rewritten behind the gateway's back.
async fn check_sealed_head(
    store: &dyn Store,
    dir: &Path,
    signer: Option<&AuditSigner>,
    archived_through: i64,
) -> Result<Option<SealedHead>, ArchiveError> {
    let Some(signer) = signer else {
        // No key yet, so nothing was ever sealed: a heads file that holds heads anyway means
        // the key was removed from the database, or this is another database than the one
        // the archive directory belongs to.
        return match std::fs::metadata(dir.join(HEADS_FILE)) {
            Ok(m) if m.len() > 0 => Err(ArchiveError::Heads(format!(
                "{HEADS_FILE} holds sealed heads, yet the database has no signing key (it was removed, or the archive directory belongs to another database)"
            ))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArchiveError::Heads(format!("{HEADS_FILE}: {e}"))),
        };
    };
    let (owned_dir, public) = (dir.to_owned(), signer.info.public_key.clone());
    let sealed = tokio::task::spawn_blocking(move || head::newest(&owned_dir, &public))
        .await
        .map_err(|e| ArchiveError::Heads(format!("the reading thread failed: {e}")))?
        .map_err(ArchiveError::Heads)?;
    let Some(sealed) = sealed else { return Ok(None) };
    if sealed.seq <= archived_through {
        return Ok(Some(sealed));
    }
    let found = store
        .audit_chain(sealed.seq - 1, 1)
        .await?
        .into_iter()
        .find(|r| r.seq == sealed.seq);
    match found {
        Some(r) if r.hash == sealed.hash => Ok(Some(sealed)),
        Some(_) => Err(ArchiveError::Chain(format!(
            "record {}: its hash is not the one sealed at {} in {HEADS_FILE} (the trail was rewritten)",
            sealed.seq,
            sealed.sealed_at.to_rfc3339()
        ))),
        None => Err(ArchiveError::Chain(format!(
            "record {}: missing, yet it was sealed at {} in {HEADS_FILE} (the trail was cut back)",
            sealed.seq,
            sealed.sealed_at.to_rfc3339()
        ))),
    }
}

/// Seals the trail's newest record, once the chain from `from` (the last seal, or the newest
/// file's end) up to it verifies: a seal never covers records that do not link to the one
/// before it, so a rewrite made while a pass runs is not sealed either. Returns the new seal;
/// none when nothing was added since `from`.
async fn seal_head(
    store: &dyn Store,
    dir: &Path,
    signer: &AuditSigner,
    from: (i64, String),
    holder: Uuid,
) -> Result<Option<SealedHead>, ArchiveError> {
    let Some((target, _)) = store.audit_head().await? else {
        return Ok(None);
    };
    let mut report = VerifyReport::from_checkpoint(from.0, &from.1);
    let mut at = None;
    while report.head_seq < target {
        let page = store
            .audit_chain(report.head_seq, PAGE.min(target - report.head_seq))
            .await?;
        let Some(last_at) = page.last().map(|r| r.at) else {
            break;
        };
        report = tokio::task::spawn_blocking(move || {
            verify_records(&mut report, &page);
            report
        })
        .await
        .map_err(|e| ArchiveError::Chain(format!("the verifying thread failed: {e}")))?;
        if !report.ok {
            return Err(ArchiveError::Chain(format!(
                "{} (after the last seal: nothing is sealed over it)",
                report.error.unwrap_or_default()
            )));
        }
        at = Some(last_at);
        renew(store, holder).await?;
    }
    let Some(at) = at else { return Ok(None) };
    let sealed = SealedHead::seal(signer, report.head_seq, &report.head_hash, from_micros(at), now());
    let (owned_dir, line) = (dir.to_owned(), sealed.clone());
    tokio::task::spawn_blocking(move || head::append(&owned_dir, &line))
        .await
        .map_err(|e| ArchiveError::Heads(format!("the writing thread failed: {e}")))?
        .map_err(|e| ArchiveError::Heads(format!("cannot write {HEADS_FILE}: {e}")))?;
    tracing::debug!(seq = sealed.seq, "sealed the audit trail's head");
    Ok(Some(sealed))
}

/// What one file is to hold.
struct Span<'a> {
    period: &'a str,
    /// The last record archived so far, and its hash.
    after_seq: i64,
    after_hash: &'a str,
    /// The file holds no record past this one.
    bound: i64,
    /// Nor a record made at or after this (microseconds): the day's end.
    day_end: i64,
    /// The last seal: if the file holds its record, with its sealed hash.
    sealed: Option<(i64, &'a str)>,
}

/// Writes the span's records to its file, verifying them on the way, and returns its
/// checkpoint, not yet signed.
async fn write_period(
    store: &dyn Store,
    dir: &Path,
    span: &Span<'_>,
    holder: Uuid,
) -> Result<Checkpoint, ArchiveError> {
    // Named once its last record is known: written under a temporary name until then.
    let io = |source| ArchiveError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut writer = Some(ArchiveWriter::create(dir).map_err(io)?);
    let mut report = VerifyReport::from_checkpoint(span.after_seq, span.after_hash);
    let (mut first_at, mut last_at) = (i64::MAX, i64::MIN);
    let mut ended = false;
    while !ended && report.head_seq < span.bound {
        let mut page: Vec<StoredAudit> = store
            .audit_chain(report.head_seq, PAGE.min(span.bound - report.head_seq))
            .await?;
        if page.is_empty() {
            return Err(ArchiveError::Chain(format!(
                "record {}: missing (the trail ends before the day does)",
                report.head_seq + 1
            )));
        }
        // The run ends at the first record of a later day.
        if let Some(later) = page.iter().position(|r| r.at >= span.day_end) {
            page.truncate(later);
            ended = true;
        }
        if page.is_empty() {
            break;
        }
        for row in &page {
            first_at = first_at.min(row.at);
            last_at = last_at.max(row.at);
        }
        // The pass checked the last seal when it began; a rewrite since then is never signed.
        if let Some((seq, hash)) = span.sealed
            && page.iter().any(|r| r.seq == seq && r.hash != hash)
        {
            return Err(ArchiveError::Chain(format!(
                "record {seq}: its hash is not the one sealed in {HEADS_FILE} (the trail was rewritten)"
            )));
        }
        // Checking and compressing are CPU work: off the async threads.
        let mut w = writer.take().ok_or_else(|| ArchiveError::Chain("writer lost".into()))?;
        let (checked, w) = tokio::task::spawn_blocking(move || {
            verify_records(&mut report, &page);
            if !report.ok {
                return (Ok(report), w);
            }
            let mut lines = Vec::with_capacity(page.len() * 1024);
            for row in &page {
                write_line(row, &mut lines);
            }
            let written = w.write(&lines);
            (written.map(|()| report), w)
        })
        .await
        .map_err(|e| ArchiveError::Chain(format!("the archiving thread failed: {e}")))?;
        writer = Some(w);
        report = checked.map_err(io)?;
        if !report.ok {
            return Err(ArchiveError::Chain(report.error.unwrap_or_default()));
        }
        renew(store, holder).await?;
    }
    let name = file_name(span.period, span.after_seq + 1, report.head_seq);
    let writer = writer.take().ok_or_else(|| ArchiveError::Chain("writer lost".into()))?;
    let file: WrittenFile = tokio::task::spawn_blocking(move || writer.finish(&name))
        .await
        .map_err(|e| ArchiveError::Chain(format!("the archiving thread failed: {e}")))?
        .map_err(io)?;
    Ok(Checkpoint {
        period: span.period.to_owned(),
        first_seq: span.after_seq + 1,
        last_seq: report.head_seq,
        first_prev_hash: span.after_hash.to_owned(),
        head_hash: report.head_hash,
        records: i64::try_from(report.records).unwrap_or(i64::MAX),
        first_at: from_micros(first_at),
        last_at: from_micros(last_at),
        file: file.name,
        file_sha256: file.sha256,
        file_bytes: i64::try_from(file.bytes).unwrap_or(i64::MAX),
        created_at: now(),
        key_id: String::new(),
        signature: String::new(),
    })
}

/// A pass that stopped between writing a file and storing its checkpoint left a file no
/// checkpoint names, starting right after the newest one. Its records are still in the
/// database and will be archived again, maybe over a longer span (so under another name): the
/// file is renamed out of the archive's names (`….unsigned`), kept for a look, never deleted.
fn set_aside_unsigned(dir: &Path, after_seq: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(".audit-") && name.ends_with(".partial") {
            let _ = std::fs::remove_file(&path);
        } else if span_of(&name).is_some_and(|(first, _)| first == after_seq + 1) {
            let aside = dir.join(format!("{name}.unsigned"));
            match std::fs::rename(&path, &aside) {
                Ok(()) => {
                    tracing::warn!(file = %name, "set aside an archive file that no checkpoint names (a pass stopped before signing it)")
                }
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot set aside an unsigned archive file"),
            }
        }
    }
}

/// Keeps the lease for the pass; a pass that lost it (it ran past [`LEASE`] without a word, and
/// another replica took over) stops before it writes anything more.
async fn renew(store: &dyn Store, holder: Uuid) -> Result<(), ArchiveError> {
    if store.take_archive_lease(holder, now(), now() + LEASE).await? {
        Ok(())
    } else {
        Err(ArchiveError::LeaseLost)
    }
}

/// Deletes the records up to `through_seq` in small transactions, letting the indexer in
/// between them.
async fn prune(store: &dyn Store, through_seq: i64, holder: Uuid) -> Result<u64, ArchiveError> {
    let mut pruned = 0;
    loop {
        let n = store.prune_audit(through_seq, PRUNE_BATCH).await?;
        if n == 0 {
            return Ok(pruned);
        }
        pruned += n;
        if pruned % (PRUNE_BATCH as u64 * 100) == 0 {
            renew(store, holder).await?;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs passes every `options.every` (the first at once) until the process ends.
pub fn spawn(state: crate::state::AppState, options: RetentionOptions) {
    tokio::spawn(async move {
        loop {
            let cutoff = now() - chrono::Duration::days(i64::from(options.retain_days));
            let ring = state.keyring.current();
            match archive_before(state.store.as_ref(), &ring, &options.dir, cutoff, state.replica).await {
                Ok(done) => {
                    let records: i64 = done.checkpoints.iter().map(|c| c.records).sum();
                    state.metrics.audit_archive(u64::try_from(records).unwrap_or(0), false);
                    if done.ran {
                        state.metrics.audit_archive_pass(now().timestamp());
                    }
                }
                Err(e) => {
                    state.metrics.audit_archive(0, true);
                    tracing::error!(error = %e, "archiving the audit trail failed; retrying at the next pass");
                }
            }
            tokio::time::sleep(options.every).await;
        }
    });
}
