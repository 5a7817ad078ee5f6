//! An approved call, made by credgate itself: the held request goes through the phases a call
//! goes through from the grant on (the app key and the grant read again, so either revoked or
//! expired since means nothing is sent; the principal, method, path and destination checked
//! again),
//! then the credential goes on, the call goes out, and the response is kept, sealed, for the
//! app. Not counted against the limits again: the call was, when it was held.

use http_body_util::BodyExt;

use super::call::{About, Call, Failure};
use super::{Delivery, authn, body, credential, deliver, policy, target};
use crate::approvals::held::{HeldRequest, HeldResponse};
use crate::approvals::{Approval, ApprovalStatus, Finished};
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::outbound::destination;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Makes the approved call and records how it ended. The approval is `executing`: this
/// replica won it, and no other will make it.
pub async fn execute(state: AppState, approval: Approval) {
    let ended = match make(&state, &approval).await {
        Ok(response) => {
            let sealed = response.seal(&state.keyring.current(), approval.id);
            match sealed {
                Ok(sealed) => Finished {
                    status: ApprovalStatus::Executed,
                    at: now(),
                    keep_until: now() + chrono::Duration::seconds(approval.ttl_seconds),
                    response_status: Some(response.status),
                    response: Some(sealed),
                    failure: None,
                },
                Err(e) => failed(format!("internal: the response could not be kept ({e})")),
            }
        }
        Err(why) => failed(why),
    };
    state.metrics.approval(if ended.status == ApprovalStatus::Executed {
        "executed"
    } else {
        "failed"
    });
    match state.store.finish_approval(approval.id, &ended).await {
        Ok(true) => {}
        // The sweep gave up on it first (it ran past the time a replica is given to finish).
        Ok(false) => tracing::warn!(
            approval = %approval.id,
            "an approved call ended after it was recorded as failed; its response is not kept"
        ),
        // The sweep marks it failed once it has been executing for too long.
        Err(e) => tracing::error!(approval = %approval.id, error = %e, "could not record how an approved call ended"),
    }
}

fn failed(why: String) -> Finished {
    Finished {
        status: ApprovalStatus::Failed,
        at: now(),
        keep_until: now(),
        response_status: None,
        response: None,
        failure: Some(why),
    }
}

/// The call, through the phases; the upstream's response, or why there is none (credgate's
/// error code and message, as the call's record has them).
async fn make(state: &AppState, approval: &Approval) -> Result<HeldResponse, String> {
    let sealed = approval
        .request
        .as_ref()
        .ok_or_else(|| "internal: the held request is gone".to_owned())?;
    let held = HeldRequest::open(&state.keyring.current(), approval.id, sealed)
        .map_err(|e| format!("internal: the held request cannot be opened ({e})"))?;
    let request_id = RequestId::new().0;
    let mut call = begin(state, &request_id, &held.method).await?;
    call.event.mode = Some("approval".into());
    call.event.target = Some(approval.id.to_string());
    call.event.key_id = Some(approval.key_id);
    call.event.principal_id = Some(approval.principal_id);
    call.event.user_principal_id = approval.user_principal_id;
    call.event.actor = Some(format!("principal:{}", approval.principal_id));
    call.event.reason = approval.reason.clone();
    call.event.context = approval.context.clone();
    match through_phases(&mut call, approval, held).await {
        Ok(response) => keep(response, state.settings.approval_max_body).await,
        Err(failure) => {
            let why = format!("{}: {}", failure.error.code.as_str(), failure.error.message);
            drop(call.fail(failure));
            Err(why)
        }
    }
}

/// A place among the calls in flight, waited for: an approved call is not refused for a
/// moment's load the way a new one is.
async fn begin(state: &AppState, request_id: &str, method: &str) -> Result<Call, String> {
    let deadline = tokio::time::Instant::now() + PLACE_PATIENCE;
    loop {
        if let Ok(call) = Call::begin(state.clone(), About::made_here(request_id.to_owned(), method)).await {
            return Ok(call);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("overloaded: credgate had no room for the call for 30 s".to_owned());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// How long an approved call waits for a place among the calls in flight.
const PLACE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

async fn through_phases(
    call: &mut Call,
    approval: &Approval,
    held: HeldRequest,
) -> Result<axum::response::Response, Failure> {
    let method = http::Method::from_bytes(held.method.as_bytes())
        .map_err(|_| ApiError::bad_request("the held method is not a method"))?;
    // The app key that made the call, still valid: revoking an agent's key stops what it left
    // waiting, as it stops its next call.
    let key = call
        .state
        .store
        .api_key(approval.key_id)
        .await
        .map_err(ApiError::from)?;
    if !key.is_some_and(|k| k.is_usable(now())) {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the app key that made this call has been revoked or has expired",
        )
        .into());
    }
    let grant = policy::grant(call, &approval.grant_id.to_string()).await?;
    authn::authorise_held(&call.state, approval.principal_id, approval.user_principal_id, &grant).await?;
    policy::lifetime_and_method(&grant, &method, &held.headers)?;
    let secret = policy::secret(call, &grant).await?;
    let injector = credential::injector(call, &secret).await?;
    let (url, query) = match held.url.split_once('?') {
        Some((url, query)) => (url, Some(query.to_owned())),
        None => (held.url.as_str(), None),
    };
    let target = target::absolute(url, query)?;
    policy::paths(call, &grant, &target, &held.headers)?;
    let resolver = &call.state.upstream.resolver;
    destination::check(&target.url, &secret.meta, &secret.allowed_hosts, resolver).await?;
    let limit = call.state.settings.max_body_bytes;
    let delivery = Delivery {
        secret,
        injector,
        method,
        target,
        headers: held.headers,
        inbound: body::Inbound::held(held.body, limit),
        upgrade: None,
    };
    deliver(call, delivery).await
}

/// Reads the response to its end (so the call's record is complete), keeping up to `most`
/// bytes of its body.
async fn keep(response: axum::response::Response, most: u64) -> Result<HeldResponse, String> {
    let (parts, mut body) = response.into_parts();
    let most = usize::try_from(most).unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "upstream_error: the response broke off".to_owned())?;
        if let Ok(data) = frame.into_data() {
            let room = most.saturating_sub(kept.len());
            truncated |= data.len() > room;
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(HeldResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: kept,
        truncated,
    })
}

/// How often the sweep runs.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// An approval still executing this long after it was approved lost its replica mid-call.
const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// Starts the sweep: every few seconds, approvals nobody decided in time become `expired`
/// (audited), kept responses past their time are dropped, approvals whose replica stopped
/// mid-call become `failed`, and the pending count in `/metrics` is refreshed. Every replica
/// sweeps; the updates are conditional, so they never disagree.
pub fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sweep(&state).await;
        }
    });
}

async fn sweep(state: &AppState) {
    let at = now();
    match state.store.sweep_approvals(at, at - STALE_AFTER).await {
        Ok(ended) => {
            for approval in ended {
                let (action, outcome) = if approval.status == ApprovalStatus::Pending {
                    ("approval.expire", "expired")
                } else {
                    ("approval.interrupt", "failed")
                };
                state.metrics.approval(outcome);
                let mut event = crate::audit::AuditEvent::new(crate::audit::AuditKind::Admin, action, "ok");
                event.actor = Some("system".into());
                event.target = Some(approval.id.to_string());
                event.grant_id = Some(approval.grant_id);
                event.secret_id = Some(approval.secret_id);
                event.principal_id = Some(approval.principal_id);
                state.audit.record_detached(event);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not sweep the approvals"),
    }
    match state.store.pending_approvals(at).await {
        Ok(pending) => state.metrics.approvals_pending(pending),
        Err(e) => tracing::debug!(error = %e, "could not count the pending approvals"),
    }
}
