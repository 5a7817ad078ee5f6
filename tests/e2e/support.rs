//! The harness: a real `credgate` process on port 0, its logs, an admin client, and fresh
//! PostgreSQL schemas.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_credgate");

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How to start a gateway. `data_dir` defaults to a fresh temporary directory.
#[derive(Default, Clone)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub log: Option<String>,
}

pub struct Gateway {
    child: Option<Child>,
    pub base: String,
    /// `http://<addr>` of the forward proxy, when started with `--proxy-listen`.
    pub proxy: Option<String>,
    pub admin_token: String,
    pub data_dir: PathBuf,
    _tmp: Option<Arc<tempfile::TempDir>>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    pub http: reqwest::Client,
}

/// Sends raw bytes and returns the raw response: for requests a normal client would rewrite
/// (dot segments, odd framing).
pub fn raw_http(base: &str, request: &str) -> String {
    use std::io::Read;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

/// A start that did not reach "listening on": exit status and output.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<std::process::ExitStatus>,
    pub output: String,
}

impl Gateway {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await.expect("gateway starts")
    }

    pub async fn start_with(opts: Options) -> Result<Self, StartFailure> {
        init();
        let (tmp, data_dir) = match &opts.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let tmp = Arc::new(tempfile::tempdir().expect("temp dir"));
                let dir = tmp.path().join("data");
                (Some(tmp), dir)
            }
        };
        let logs_dir = tempfile::tempdir().expect("logs dir").keep();
        let stdout_path = logs_dir.join("stdout.log");
        let stderr_path = logs_dir.join("stderr.log");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&opts.args)
            .env_remove("CREDGATE_MASTER_KEY")
            .env_remove("CREDGATE_ADMIN_TOKEN")
            .env_remove("CREDGATE_DATABASE_URL")
            .env("CREDGATE_LOG", opts.log.as_deref().unwrap_or("info"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&stderr_path).expect("stderr file")));
        if let Some(url) = &opts.database_url {
            cmd.arg("--database-url").arg(url);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn credgate");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let tee_path = stdout_path.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&tee_path).expect("stdout file");
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                let _ = file.flush();
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => break addr.parse::<SocketAddr>().expect("address"),
                Err(_) => {
                    if let Some(status) = child.try_wait().expect("try_wait") {
                        std::thread::sleep(Duration::from_millis(100));
                        let output = read(&stdout_path) + &read(&stderr_path);
                        return Err(StartFailure {
                            status: Some(status),
                            output,
                        });
                    }
                }
            }
        };
        let admin_token = opts
            .env
            .iter()
            .find(|(k, _)| k == "CREDGATE_ADMIN_TOKEN")
            .map(|(_, v)| v.clone())
            .or_else(|| {
                std::fs::read_to_string(data_dir.join("admin-token"))
                    .ok()
                    .map(|t| t.trim().to_owned())
            })
            .unwrap_or_default();
        // Never follows redirects: a test must see exactly what credgate answered.
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        // Printed before "listening on", so already in the file.
        let proxy = read(&stdout_path)
            .lines()
            .find_map(|l| l.strip_prefix("forward proxy on "))
            .map(|a| format!("http://{a}"));
        Ok(Self {
            child: Some(child),
            base: format!("http://{addr}"),
            proxy,
            admin_token,
            data_dir,
            _tmp: tmp,
            stdout_path,
            stderr_path,
            http,
        })
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        read(&self.stdout_path) + &read(&self.stderr_path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An admin call; the body is JSON or nothing.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::from(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.admin(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.admin(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.admin(Method::DELETE, path, None).await
    }

    /// Runs the CLI against this gateway with `stdin` fed in.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliRun {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("CREDGATE_ADDR", &self.base)
            .env("CREDGATE_DATA_DIR", &self.data_dir)
            .env_remove("CREDGATE_ADMIN_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cli");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("cli output");
        CliRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn create_principal(&self, kind: &str, name: &str) -> String {
        let r = self
            .post("/admin/v1/principals", serde_json::json!({"kind": kind, "name": name}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["id"].as_str().expect("id").to_owned()
    }

    pub async fn issue_key(&self, principal: &str) -> (String, String) {
        let r = self
            .post(&format!("/admin/v1/principals/{principal}/keys"), serde_json::json!({}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.json["id"].as_str().expect("id").to_owned(),
            r.json["key"].as_str().expect("key").to_owned(),
        )
    }

    /// An explicit-mode call: `/v1/proxy` with the grant and target headers.
    pub fn proxy(&self, method: Method, key: Option<&str>, grant: &str, target: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}/v1/proxy", self.base))
            .header("x-credgate-grant", grant)
            .header("x-credgate-target", target);
        if let Some(key) = key {
            req = req.header("proxy-authorization", format!("Bearer {key}"));
        }
        req
    }

    /// A base-URL-mode call: `/v1/grants/<grant>/<path>`.
    pub fn via_grant(&self, method: Method, grant: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.request(
            method,
            format!("{}/v1/grants/{grant}/{}", self.base, path.trim_start_matches('/')),
        )
    }

    /// The forward-proxy CA's trust bundle (`GET /v1/proxy-ca`, no token), as PEM.
    pub async fn proxy_ca(&self) -> String {
        let r = self
            .http
            .get(format!("{}/v1/proxy-ca", self.base))
            .send()
            .await
            .expect("GET /v1/proxy-ca");
        r.text().await.expect("the CA bundle")
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        r.text().await.expect("metrics body")
    }

    /// The audit records of one request id, oldest first.
    pub async fn audit_of(&self, request_id: &str) -> Vec<Value> {
        self.audit_n(request_id, 1).await
    }

    /// Waits until at least `n` audit records of the request id are written.
    pub async fn audit_n(&self, request_id: &str, n: usize) -> Vec<Value> {
        let mut records = Vec::new();
        for _ in 0..100 {
            let r = self.get(&format!("/admin/v1/audit?request_id={request_id}")).await;
            records = r.json["data"].as_array().cloned().unwrap_or_default();
            if records.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        records.reverse();
        records
    }

    pub async fn create_secret(&self, body: Value) -> String {
        let r = self.post("/admin/v1/secrets", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["id"].as_str().expect("id").to_owned()
    }

    pub async fn issue_grant(&self, secret: &str, principal: &str, policy: Value) -> String {
        let r = self
            .post(
                &format!("/admin/v1/secrets/{secret}/grants"),
                serde_json::json!({"principal_id": principal, "grant_policy": policy}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["grant_id"].as_str().expect("grant id").to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// Asserts credgate's error shape, code and header, and returns the message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "status for {code}: {}", self.text);
        assert_eq!(self.json["error"]["code"], code, "{}", self.text);
        assert_eq!(
            self.headers.get("x-credgate-error").and_then(|v| v.to_str().ok()),
            Some(code)
        );
        let request_id = self.json["error"]["request_id"].as_str().expect("request_id in body");
        assert_eq!(
            self.headers.get("x-credgate-request-id").and_then(|v| v.to_str().ok()),
            Some(request_id)
        );
        let message = self.json["error"]["message"].as_str().expect("message").to_owned();
        assert!(!message.is_empty());
        message
    }
}

#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Asserts that no file under `dir` (database, journal, keys) holds `needle`, named `what`.
pub fn assert_no_file_holds(dir: &Path, needle: &str, what: &str) {
    for path in files_under(dir) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{} holds {what}",
            path.display()
        );
    }
}

/// Every file under `dir`, in subdirectories too (the audit journal has its own).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A test peer built from crates.io into `~/.cache/credgate/tools` on first use (`.ci/run`
/// builds it ahead), shared by every test and every run. Building is serialised by a lock file.
pub fn tool_from_crates_io(name: &str, version: &str, extra: &[&str]) -> PathBuf {
    let root = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache/credgate/tools");
    let binary = root.join("bin").join(name);
    if binary.exists() {
        return binary;
    }
    std::fs::create_dir_all(&root).expect("tools dir");
    let lock = root.join(format!("{name}.lock"));
    // Whoever creates the lock file builds; the others wait for the binary.
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
        Ok(_) => {
            eprintln!(
                "building test peer {name} {version} from crates.io (once; cached in {})",
                root.display()
            );
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["install", name, "--version", version, "--locked", "--root"])
                .arg(&root)
                .args(extra)
                .env("CARGO_TARGET_DIR", root.join("target"))
                .status();
            let _ = std::fs::remove_file(&lock);
            assert!(
                status.is_ok_and(|s| s.success()),
                "cargo install {name} {version} failed"
            );
        }
        Err(_) => {
            for _ in 0..1800 {
                if binary.exists() || !lock.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    assert!(binary.exists(), "{name} is not available at {}", binary.display());
    binary
}

/// The PostgreSQL server the suites run against.
pub fn postgres_base_url() -> String {
    std::env::var("CREDGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether the operator asked, explicitly, to leave PostgreSQL out. Never silent: it prints.
pub fn postgres_skipped() -> bool {
    let skip = std::env::var("CREDGATE_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("SKIPPED: PostgreSQL suite disabled by CREDGATE_TEST_SKIP_POSTGRES=1");
    }
    skip
}

/// `n` gateway processes on one fresh PostgreSQL schema, sharing a master key and an admin
/// token; `None` when PostgreSQL is left out explicitly.
pub async fn replicas_on_postgres(n: usize) -> Option<Vec<Gateway>> {
    if postgres_skipped() {
        return None;
    }
    use base64::Engine;
    let options = Options {
        database_url: Some(fresh_postgres_url().await),
        env: vec![
            (
                "CREDGATE_MASTER_KEY".into(),
                base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            ),
            ("CREDGATE_ADMIN_TOKEN".into(), "replicas-share-this-admin-token".into()),
        ],
        ..Default::default()
    };
    let mut replicas = Vec::with_capacity(n);
    for _ in 0..n {
        replicas.push(Gateway::start_with(options.clone()).await.unwrap());
    }
    Some(replicas)
}

/// A request sent, its reply read.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    Reply::from(req.send().await.unwrap()).await
}

/// A URL for a fresh, empty schema on the test PostgreSQL server.
pub async fn fresh_postgres_url() -> String {
    init();
    let base = postgres_base_url();
    let schema = format!("cg_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for this test and is not reachable at {base}: {e}. Start it, or point \
                 CREDGATE_TEST_POSTGRES_URL at one (CREDGATE_TEST_SKIP_POSTGRES=1 skips these tests explicitly)"
            )
        });
    let create = format!("CREATE SCHEMA {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A test peer process that prints `listening on <port>` first (on 127.0.0.1), killed when
/// dropped.
pub struct Peer {
    child: Child,
    pub url: String,
}

impl Peer {
    /// Starts `cmd` (its stdout is read for the port) and waits for that first line.
    pub fn spawn(mut cmd: Command, what: &str) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{what} said {first:?}"));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test peer written in Python (`tests/peers/<script>`), run with the test virtual
/// environment.
pub struct PythonPeer {
    _peer: Peer,
    pub url: String,
}

impl PythonPeer {
    pub fn start(script: &str, args: &[&std::ffi::OsStr]) -> Self {
        let python = crate::python::venv().join("bin/python");
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/peers")
            .join(script);
        let mut cmd = Command::new(python);
        cmd.arg(path).args(["--port", "0"]).args(args).stderr(Stdio::inherit());
        let peer = Peer::spawn(cmd, script);
        Self {
            url: peer.url.clone(),
            _peer: peer,
        }
    }

    /// `GET` of one of its JSON control endpoints (`/__oracle/count`, `/__tokens/count`).
    pub async fn get_json(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// `npm ci` in `dir` unless what is installed there is what its lock file pins. One at a time
/// in this process: tests starting together must not install into one folder twice.
pub fn npm_ci(dir: &Path) {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).unwrap();
    let current = std::fs::read_to_string(dir.join("node_modules/.package-lock.json")).unwrap_or_default();
    let mut wanted: Value = serde_json::from_str(&lock).unwrap();
    let have: Value = serde_json::from_str(&current).unwrap_or_default();
    // npm's record of what it installed lists the dependencies, not the root package.
    if let Some(packages) = wanted["packages"].as_object_mut() {
        packages.remove("");
    }
    if have["packages"] == wanted["packages"] {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm (Node.js 20) is needed");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}
