//! `credgate serve`: one process serving the admin API and health endpoints.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::admin;
use crate::admin_tokens::AdminAuth;
use crate::audit_writer::{AuditOptions, AuditWriter};
use crate::bootstrap;
use crate::config::ServeArgs;
use crate::error::{ApiError, ErrorCode};
use crate::masterkey::{self, KeyRingHandle};
use crate::outbound::client::{Upstream, UpstreamOptions};
use crate::shed::Shed;
use crate::state::{AppState, Inner, Settings};
use crate::store;
use crate::{listener, portal, proxy, request_id};

/// Every route credgate serves, wrapped in request-id handling, behind load shedding.
pub fn app(state: AppState) -> Shed<Router> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/proxy-ca", get(proxy_ca_bundle))
        .merge(admin::router(state.clone()))
        .merge(proxy::router())
        .merge(portal::router())
        .merge(crate::signin::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(request_id::middleware));
    // Outside the router, so a shed request is not routed first.
    Shed::new(router, state)
}

/// The forward-proxy CA's trust bundle, as PEM. Public, like any CA certificate: clients
/// (and `credgate run`) fetch it to trust credgate's interception.
async fn proxy_ca_bundle(State(state): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        state.authorities.bundle_pem(),
    )
        .into_response()
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when the database answers and shutdown has not begun.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ready", "database": state.store.backend(), "replica": state.replica}))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "database unreachable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state.audit);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route: the data plane is under /v1, the admin API under /admin/v1",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
}

/// Builds the state from `args`: key ring, database, key check, admin tokens, audit writer.
/// Returns the state and the audit writer's task, to be awaited after the state is dropped.
pub async fn build_state(args: &ServeArgs) -> anyhow::Result<(AppState, tokio::task::JoinHandle<()>)> {
    let ring = bootstrap::load_keyring(args)?;
    let url = args.database_url();
    if !url.is_postgres() && args.database_url.is_none() {
        bootstrap::prepare_data_dir(&args.data_dir)?;
    }
    // The key is checked on a read-only connection, before the schema is migrated, so a
    // wrong key changes nothing.
    if let Some(reader) = store::open_read_only(&url)
        .await
        .with_context(|| format!("cannot open the database at {url}"))?
        && reader.is_initialised().await?
    {
        masterkey::verify(reader.as_ref(), &ring)
            .await
            .context("refusing to start: the master key does not fit this database (nothing was changed)")?;
        reader.close().await;
    }
    let store = store::open_with(&url, args.fsync_commits)
        .await
        .with_context(|| format!("cannot open the database at {url}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database at {url}"))?;
    masterkey::check_at_start(store.as_ref(), &ring)
        .await
        .context("refusing to start: the master key does not fit this database (nothing was changed)")?;

    let operator_token = bootstrap::operator_admin_token(args)?;
    if operator_token.is_none()
        && let Some(token) = bootstrap::first_admin_token(store.as_ref(), &args.data_dir).await?
    {
        let path = args.data_dir.join(bootstrap::ADMIN_TOKEN_FILE);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "credgate: first start. An admin token was generated and saved to {} (mode 0600); the local CLI uses it.\n\
             It is shown this once:\n\n    {}\n",
            path.display(),
            token.expose()
        );
        let _ = out.flush();
    }
    let admin_auth = AdminAuth::new(store.admin_tokens().await?, operator_token.as_ref());
    let journal_dir = args.audit_journal_dir();
    let (audit, audit_task) = AuditWriter::start(
        store.clone(),
        AuditOptions {
            journal_dir: journal_dir.clone(),
            fsync: args.fsync_commits,
            capacity: args.audit_queue,
            segment_bytes: crate::audit_writer::SEGMENT_BYTES,
        },
    )
    .await
    .with_context(|| format!("cannot start the audit trail (journal at {})", journal_dir.display()))?;
    let upstream = Upstream::build(&UpstreamOptions {
        connect_timeout: Duration::from_secs(args.upstream_connect_timeout),
        first_byte_timeout: Duration::from_secs(args.upstream_first_byte_timeout),
        idle_timeout: Duration::from_secs(args.upstream_idle_timeout),
        ca_file: args.upstream_ca_file.clone(),
    })?;
    let engine = crate::plugin::PluginEngine::new(crate::plugin::Limits {
        deadline: Duration::from_millis(args.plugin_deadline_ms),
        memory_bytes: args.plugin_memory_mib << 20,
        ..Default::default()
    })?;
    let providers = Arc::new(crate::plugin::Registry::new(engine));
    // Uploaded components live in the database: load them before serving, so every replica
    // starts with the same set.
    providers
        .sync_from_store(store.as_ref(), None)
        .await
        .context("cannot load the uploaded providers")?;
    if let Some(dir) = &args.plugins_dir {
        let mut watcher = crate::plugin::watch::Watcher::new(dir.clone(), providers.clone(), audit.clone());
        watcher
            .scan()
            .await
            .with_context(|| format!("cannot read --plugins-dir {}", dir.display()))?;
        tokio::spawn(watcher.run());
    }
    let proxy_passthrough = args
        .proxy_passthrough
        .iter()
        .map(|h| crate::vault::host::HostPattern::parse(h).map_err(|e| anyhow::anyhow!("--proxy-passthrough {h}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Made at the first start even without --proxy-listen, so every replica and restart
    // presents the same CA from the moment forward-proxy mode is switched on.
    let authorities = crate::ca::Authorities::load_or_create(store.as_ref(), &ring)
        .await
        .context("cannot load or create the forward-proxy CA")?;
    let identity = args.identity().map_err(|e| anyhow::anyhow!("OIDC settings: {e}"))?;
    if identity.portal().is_some() && args.public_url.is_none() {
        // The provider sends browsers back to the redirect URI, built from the public URL.
        tracing::warn!(
            "the portal's sign-in through the identity provider redirects to the address credgate listens on; set --public-url to the https address operators use"
        );
    }
    let metrics = crate::metrics::Metrics::new();
    let limits = crate::limits::Limiter::start(store.clone(), metrics.limit_leases());
    let minter = Arc::new(crate::minting::Minter::new(metrics.token_requests()));
    let state = AppState::new(Inner {
        store,
        limits,
        minter,
        keyring: KeyRingHandle::new(ring),
        admin_auth,
        audit,
        cache: crate::cache::HotCache::new(),
        providers,
        authorities: Arc::new(authorities),
        leaves: crate::ca::leaf::Leaves::default(),
        upstream,
        identity: Arc::new(crate::identity::Identity::new(identity)),
        metrics,
        settings: Settings {
            admin_max_body_bytes: args.admin_max_body_bytes,
            max_body_bytes: args.max_body_bytes,
            max_in_flight: args.max_in_flight.max(1),
            approval_max_body: args.approval_max_body,
            public_url: args.public_url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
            portal_dir: args.portal_dir.clone(),
            log_plugin_errors: args.log_plugin_errors,
            proxy_passthrough,
            archive_interval_seconds: args.audit_retain_days.map(|_| args.audit_archive_interval_seconds),
        },
        replica: uuid::Uuid::new_v4(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(args.max_in_flight.max(1))),
        draining: AtomicBool::new(false),
        origin: std::sync::OnceLock::new(),
    });
    crate::changes::spawn(state.clone(), Duration::from_secs(args.resync_seconds.max(1)));
    crate::proxy::approved::spawn_sweeper(state.clone());
    if let Some(retain_days) = args.audit_retain_days {
        crate::audit_archiver::spawn(
            state.clone(),
            crate::audit_archiver::RetentionOptions {
                retain_days,
                dir: args.audit_archive_dir(),
                every: Duration::from_secs(args.audit_archive_interval_seconds),
            },
        );
    }
    Ok((state, audit_task))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (state, audit_task) = build_state(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Bound before "listening on" is printed, so whoever waits for that line can use both.
    let proxy_listener = match args.proxy_listen {
        Some(proxy_addr) => {
            let proxy_listener = tokio::net::TcpListener::bind(proxy_addr)
                .await
                .with_context(|| format!("cannot listen on --proxy-listen {proxy_addr}"))?;
            let bound = proxy_listener.local_addr()?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "forward proxy on {bound}");
            let _ = out.flush();
            Some(proxy_listener)
        }
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}");
        let _ = out.flush();
    }
    tracing::info!(%addr, database = state.store.backend(), "credgate is serving");
    let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let _ = state.origin.set(format!("{scheme}://{host}"));
    resume_rewrap(&state);

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(listener::tls_acceptor(cert, key)?),
        _ => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining_state = state.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        draining_state.draining.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });
    if let Some(proxy_listener) = proxy_listener {
        tokio::spawn(listener::serve(
            proxy_listener,
            crate::forward_proxy::app(state.clone()),
            None,
            stop_rx.clone(),
        ));
    }
    let mut deadline = stop_rx.clone();
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    tokio::select! {
        () = listener::serve(listener, app(state.clone()), tls, stop_rx) => {}
        () = async move {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("grace period over; closing the remaining connections"),
    }
    // Slices of grant limits go back for the other replicas; then the audit writer writes
    // what it holds, and stops.
    state.limits.release_all().await;
    let store = state.store.clone();
    state.audit.close();
    drop(state);
    if tokio::time::timeout(Duration::from_secs(10), audit_task).await.is_err() {
        tracing::error!("the audit writer did not finish within 10 s");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// A re-wrap interrupted by a stop carries on at the next start.
fn resume_rewrap(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        match masterkey::status(state.store.as_ref(), &state.keyring).await {
            Ok(status) if status.pending_rewrap > 0 => {
                tracing::info!(
                    pending = status.pending_rewrap,
                    "resuming the re-wrap of data keys under the active master key"
                );
                match masterkey::rewrap(state.store.as_ref(), &state.keyring, None).await {
                    Ok(report) => tracing::info!(
                        rewrapped = report.rewrapped,
                        remaining = report.remaining,
                        "re-wrap finished"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "re-wrap failed; run `credgate keyring rewrap` to retry")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the key ring's state"),
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
