//! The CLI's admin API client and its errors, which map to documented exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use crate::bootstrap::ADMIN_TOKEN_FILE;
use crate::redact::SecretString;

/// Exit codes scripts can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const UNAUTHENTICATED: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const INVALID: u8 = 6;
    pub const UNAVAILABLE: u8 = 7;
    pub const VERIFY_FAILED: u8 = 8;
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes: 0 success, 1 failure, 2 usage error, 3 not authenticated (no or wrong admin token),
4 not found, 5 conflict, 6 invalid input, 7 credgate unreachable or failing,
8 audit chain does not verify.

The admin commands reach credgate at CREDGATE_ADDR (default http://127.0.0.1:8080) with the
admin token in CREDGATE_ADMIN_TOKEN, or else the one the first start saved in
$CREDGATE_DATA_DIR/admin-token (default ./credgate-data/admin-token).";

#[derive(Debug)]
pub struct CliError {
    pub exit: u8,
    pub message: String,
}

impl CliError {
    pub fn new(exit: u8, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Address of credgate's admin API.
    #[arg(long, env = "CREDGATE_ADDR", default_value = "http://127.0.0.1:8080", global = true)]
    pub addr: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl AdminClient {
    pub fn new(args: &ClientArgs) -> Result<Self, CliError> {
        let token = find_token()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| CliError::new(exit::FAILURE, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: args.addr.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, None).await
    }

    /// A POST of raw bytes (a component upload).
    pub async fn post_bytes(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .header("content-type", content_type)
            .body(bytes);
        let response = request.send().await.map_err(|e| {
            CliError::new(
                exit::UNAVAILABLE,
                format!("cannot reach credgate at {}: {}", self.base, short(&e)),
            )
        })?;
        let response = Self::check(response).await?;
        response.json().await.map_err(|e| {
            CliError::new(
                exit::FAILURE,
                format!("credgate answered with something that is not JSON: {e}"),
            )
        })
    }

    /// A GET whose body is returned as text (JSON lines).
    pub async fn get_text(&self, path: &str) -> Result<String, CliError> {
        let response = self.send(Method::GET, path, None).await?;
        response
            .text()
            .await
            .map_err(|e| CliError::new(exit::UNAVAILABLE, format!("reading the response failed: {e}")))
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let response = self.send(method, path, body).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response.json().await.map_err(|e| {
            CliError::new(
                exit::FAILURE,
                format!("credgate answered with something that is not JSON: {e}"),
            )
        })
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<reqwest::Response, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            CliError::new(
                exit::UNAVAILABLE,
                format!("cannot reach credgate at {}: {}", self.base, short(&e)),
            )
        })?;
        Self::check(response).await
    }

    /// Turns an error answer into a [`CliError`] with the documented exit code.
    async fn check(response: reqwest::Response) -> Result<reqwest::Response, CliError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let exit = match status.as_u16() {
            401 => exit::UNAUTHENTICATED,
            404 => exit::NOT_FOUND,
            409 => exit::CONFLICT,
            400 | 405 | 413 | 415 => exit::INVALID,
            _ => exit::UNAVAILABLE,
        };
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        let message = match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => {
                format!(
                    "{message} ({code}, request id {})",
                    error["request_id"].as_str().unwrap_or("?")
                )
            }
            _ => format!("credgate answered {status}"),
        };
        Err(CliError::new(exit, message))
    }
}

fn short(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// CREDGATE_ADMIN_TOKEN, else the token the local quickstart saved.
fn find_token() -> Result<SecretString, CliError> {
    if let Ok(token) = std::env::var("CREDGATE_ADMIN_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(SecretString::new(token.trim().to_owned()));
    }
    let dir = std::env::var_os("CREDGATE_DATA_DIR").map_or_else(|| PathBuf::from("./credgate-data"), PathBuf::from);
    let path = dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(SecretString::new(text.trim().to_owned())),
        _ => Err(CliError::new(
            exit::UNAUTHENTICATED,
            format!(
                "no admin token: set CREDGATE_ADMIN_TOKEN, or run where {} exists",
                path.display()
            ),
        )),
    }
}
