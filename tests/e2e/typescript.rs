//! The TypeScript SDK (`sdk/typescript`, `@credgate/sdk`): compiled with `tsc --strict`, its
//! `node --test` suite run against this build's gateway and real peers (an echo upstream,
//! s3s-fs, PostgreSQL, the OpenID Provider, the openai, Anthropic and AWS SDKs), and its
//! `npm pack` tarball installed into an empty project and imported.

use std::path::{Path, PathBuf};
use std::process::Command;

fn sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/typescript")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Builds `dist/` once per test process (both tests need it).
fn built() {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        crate::support::npm_ci(&sdk());
        run(
            Command::new("node")
                .args(["node_modules/typescript/bin/tsc", "-p", "."])
                .current_dir(sdk()),
            "tsc -p sdk/typescript (strict)",
        );
    });
}

#[test]
fn the_typescript_sdk_suite_passes() {
    built();
    let s3s = crate::support::tool_from_crates_io("s3s-fs", "0.14.1", &["--features", "binary"]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(sdk().join("test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let text = run(
        Command::new("node")
            .arg("--test")
            .args(&files)
            .current_dir(sdk())
            .env("CREDGATE_BIN", crate::support::BIN)
            .env("CREDGATE_TEST_S3S_FS", s3s)
            .env("CREDGATE_TEST_POSTGRES_URL", crate::support::postgres_base_url()),
        "node --test sdk/typescript/test",
    );
    // Nothing may skip quietly; the only allowed skip is PostgreSQL turned off explicitly.
    let skipping_postgres = std::env::var("CREDGATE_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    assert!(text.contains("# fail 0"), "{text}");
    assert!(skipping_postgres || text.contains("# skipped 0"), "{text}");
}

#[test]
fn npm_pack_gives_a_tarball_an_app_installs_and_imports() {
    built();
    let tmp = tempfile::tempdir().unwrap();
    let packed = run(
        Command::new("npm")
            .args(["pack", "--silent", "--ignore-scripts", "--pack-destination"])
            .arg(tmp.path())
            .current_dir(sdk()),
        "npm pack",
    );
    let tarball = tmp.path().join(packed.trim().lines().last().unwrap().trim());
    assert!(tarball.exists(), "{packed}");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name": "app", "private": true, "type": "module"}"#,
    )
    .unwrap();
    // No runtime dependency: installs without the registry.
    run(
        Command::new("npm")
            .args(["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg(&tarball)
            .current_dir(&app),
        "npm install <tarball>",
    );
    let listed = run(
        Command::new("npm")
            .args(["ls", "--all", "--parseable"])
            .current_dir(&app),
        "npm ls",
    );
    assert_eq!(
        listed.lines().filter(|l| l.contains("node_modules")).count(),
        1,
        "only the SDK itself: {listed}"
    );
    let out = run(
        Command::new("node")
            .args([
                "--input-type=module",
                "-e",
                "import * as c from '@credgate/sdk'; \
                 const app = new c.App('cg_app_x', { baseUrl: 'http://gw' }); \
                 console.log(typeof c.iterSse, c.GrantRevoked.CODE, app.baseUrlFor('g'), String(app));",
            ])
            .current_dir(&app),
        "import @credgate/sdk",
    );
    assert_eq!(
        out.trim(),
        "function grant_revoked http://gw/v1/grants/g App(http://gw)"
    );
    // A strict consumer compiles against the declarations in the tarball, optional values
    // that may be undefined included (exactOptionalPropertyTypes).
    std::fs::write(
        app.join("consumer.ts"),
        r#"import { App, CredgateError, iterSse, type RequestOptions } from '@credgate/sdk';
declare const maybe: string | undefined;
declare const signal: AbortSignal | undefined;
interface Ticket { ticket: string; step: number }
const context: Ticket = { ticket: 'T-1', step: 2 };
const app = new App('cg_app_x', { baseUrl: maybe, timeout: undefined });
const options: RequestOptions = { grantId: 'g', reason: maybe, signal, context, headers: [['x-a', 'b']] };
export async function run(): Promise<number> {
  try {
    const r = await app.request('GET', 'https://api.example.com/x', options);
    for await (const e of iterSse(r)) console.log(e.data, e.id ?? '');
    return r.status;
  } catch (e) {
    if (e instanceof CredgateError) return e.status;
    throw e;
  }
}
"#,
    )
    .unwrap();
    std::fs::write(
        app.join("tsconfig.json"),
        r#"{"compilerOptions": {"strict": true, "exactOptionalPropertyTypes": true,
            "noUncheckedIndexedAccess": true, "noEmit": true, "module": "NodeNext",
            "moduleResolution": "NodeNext", "target": "ES2022",
            "lib": ["ES2022", "DOM", "DOM.Iterable"], "types": []},
            "files": ["consumer.ts"]}"#,
    )
    .unwrap();
    run(
        Command::new("node")
            .arg(sdk().join("node_modules/typescript/bin/tsc"))
            .args(["-p", "."])
            .current_dir(&app),
        "a strict consumer compiles",
    );
}
