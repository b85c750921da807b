//! `leads admin` for every kind of credential, and `leads serve`'s JWT and rate-limit flags,
//! through the real binary.

mod common;

use common::{admin, serve, LEADS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;

async fn status(http: &reqwest::Client, url: &str, token: &str) -> StatusCode {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_issue_list_and_revoke_every_kind_of_credential() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("leads.db").display());
    let company = admin(&db, &["company", "create", "--title", "Acme"]);
    let user = admin(&db, &["user", "create", "--username", "ada"]);

    // A company key, shown once as JSON.
    let created: Value = serde_json::from_str(&admin(
        &db,
        &[
            "key",
            "create",
            "--company",
            &company,
            "--permissions",
            "lead:basic:read,member:basic:read,access_pass:basic:read",
            "--json",
        ],
    ))
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("leads_ck_"), "{created}");
    assert_eq!(
        created["permissions"],
        json!([
            "lead:basic:read",
            "member:basic:read",
            "access_pass:basic:read"
        ])
    );
    // Listed without its secret.
    let listed = admin(&db, &["key", "list", "--company", &company]);
    assert!(
        listed.contains(&key_id) && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "{listed}");
    let listed: Value = serde_json::from_str(&admin(
        &db,
        &["key", "list", "--company", &company, "--json"],
    ))
    .unwrap();
    assert_eq!(listed[0]["id"], key_id.as_str());
    assert!(!listed.to_string().contains(&key));

    // An app, installed, with a key.
    let app = admin(&db, &["app", "create", "--title", "Pickaxe CRM"]);
    assert!(app.starts_with("app_"), "{app}");
    let installed = admin(
        &db,
        &[
            "app",
            "install",
            "--app",
            &app,
            "--company",
            &company,
            "--permissions",
            "lead:basic:read,member:basic:read,access_pass:basic:read",
        ],
    );
    assert_eq!(
        installed,
        "lead:basic:read,member:basic:read,access_pass:basic:read"
    );
    let app_key = admin(&db, &["key", "create", "--app", &app]);
    assert!(app_key.starts_with("leads_ak_"), "{app_key}");
    assert!(admin(&db, &["key", "list", "--app", &app]).starts_with("key_"));

    // A user token for a user on the team.
    admin(
        &db,
        &["team", "add", "--company", &company, "--user", &user],
    );
    let token: Value = serde_json::from_str(&admin(
        &db,
        &[
            "token",
            "create",
            "--user",
            &user,
            "--scopes",
            "lead:basic:read,member:basic:read,access_pass:basic:read",
            "--ttl",
            "600",
            "--json",
        ],
    ))
    .unwrap();
    let secret = token["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("leads_ut_"), "{token}");
    assert!(token["id"].as_str().unwrap().starts_with("utok_"));
    assert!(token["expires_at"].is_string(), "{token}");

    let http = reqwest::Client::new();
    let server = serve(&db, &http, &[]).await;
    let url = format!("{}/api/v1/leads?company_id={company}", server.base);
    for credential in [&key, &app_key, &secret] {
        assert_eq!(status(&http, &url, credential).await, StatusCode::OK);
    }
    // Each undone while the server runs: refused on the next request.
    admin(&db, &["key", "revoke", &key_id]);
    assert_eq!(status(&http, &url, &key).await, StatusCode::UNAUTHORIZED);
    assert!(admin(&db, &["key", "list", "--company", &company]).contains("revoked"));
    admin(
        &db,
        &["app", "uninstall", "--app", &app, "--company", &company],
    );
    assert_eq!(status(&http, &url, &app_key).await, StatusCode::FORBIDDEN);
    admin(
        &db,
        &["team", "remove", "--company", &company, "--user", &user],
    );
    // Off the team the token may not list the company's leads at all.
    assert_eq!(status(&http, &url, &secret).await, StatusCode::FORBIDDEN);
    admin(&db, &["token", "revoke", token["id"].as_str().unwrap()]);
    assert_eq!(status(&http, &url, &secret).await, StatusCode::UNAUTHORIZED);

    // Mistakes are refused with exit code 2 and say what is wrong.
    for (args, says) in [
        (vec!["key", "create", "--app", "app_nope"], "not an app id"),
        (vec!["key", "revoke", "lead_xxxxxxxxxxxxx"], "not a key id"),
        (
            vec!["token", "create", "--user", &user, "--scopes", "lead:fly"],
            "unknown permission",
        ),
        (
            vec!["app", "install", "--app", &app, "--company", "biz_x"],
            "not a company id",
        ),
    ] {
        let output = std::process::Command::new(LEADS)
            .arg("admin")
            .args(&args)
            .args(["--database", &db])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Runs `openssl` with `args` in `dir`; false when there is no openssl.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(output) => {
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_minted_with_openssl_keys_are_verified_by_serve() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path();
    // PKCS#8 P-256, SEC1 P-256 and PKCS#8 Ed25519: the shapes openssl writes.
    let made = openssl(
        keys,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    ) && openssl(
        keys,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    ) && openssl(
        keys,
        &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"],
    );
    if !made {
        if std::env::var_os("CI").is_some() {
            panic!("openssl is needed for this test");
        }
        eprintln!("*** SKIPPED: no openssl on PATH ***");
        return;
    }
    for name in ["ec", "sec1", "ed"] {
        assert!(openssl(
            keys,
            &[
                "pkey",
                "-in",
                &format!("{name}.pem"),
                "-pubout",
                "-out",
                &format!("{name}.pub")
            ]
        ));
    }
    let db = format!("sqlite://{}", keys.join("leads.db").display());
    let company = admin(&db, &["company", "create", "--title", "Acme"]);
    let path = |name: &str| keys.join(name).display().to_string();

    // A private key given as a public one is refused at start-up, saying so.
    let output = std::process::Command::new(LEADS)
        .args([
            "serve",
            "--database",
            &db,
            "--addr",
            "127.0.0.1:0",
            "--jwt-public-key",
            &path("ec.pem"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("private key"));

    let http = reqwest::Client::new();
    let server = serve(
        &db,
        &http,
        &[
            "--jwt-public-key",
            &path("ec.pub"),
            "--jwt-public-key",
            &format!("{},{}", path("sec1.pub"), path("ed.pub")),
            "--jwt-issuer",
            "https://auth.example",
            "--jwt-audience",
            "leads",
        ],
    )
    .await;
    let url = format!("{}/api/v1/leads?company_id={company}", server.base);
    for name in ["ec.pem", "sec1.pem", "ed.pem"] {
        let token = admin(
            &db,
            &[
                "jwt",
                "mint",
                "--private-key",
                &path(name),
                "--company",
                &company,
                "--issuer",
                "https://auth.example",
                "--audience",
                "leads",
                "--ttl",
                "60",
            ],
        );
        assert_eq!(token.split('.').count(), 3, "{token}");
        assert_eq!(status(&http, &url, &token).await, StatusCode::OK, "{name}");
        // Without the configured issuer, refused.
        let token = admin(
            &db,
            &[
                "jwt",
                "mint",
                "--private-key",
                &path(name),
                "--company",
                &company,
                "--audience",
                "leads",
            ],
        );
        assert_eq!(
            status(&http, &url, &token).await,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
    }
    // Too few permissions: 403.
    let token = admin(
        &db,
        &[
            "jwt",
            "mint",
            "--private-key",
            &path("ed.pem"),
            "--company",
            &company,
            "--permissions",
            "lead:basic:read",
            "--issuer",
            "https://auth.example",
            "--audience",
            "leads",
        ],
    );
    assert_eq!(status(&http, &url, &token).await, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_rate_limit_flags_set_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("leads.db").display());
    let company = admin(&db, &["company", "create", "--title", "Acme"]);
    let key = admin(&db, &["key", "create", "--company", &company]);
    let http = reqwest::Client::new();
    let server = serve(
        &db,
        &http,
        &["--rate-limit", "6", "--rate-limit-burst", "2"],
    )
    .await;
    let url = format!("{}/api/v1/leads?company_id={company}", server.base);
    assert_eq!(status(&http, &url, &key).await, StatusCode::OK);
    assert_eq!(status(&http, &url, &key).await, StatusCode::OK);
    let refused = http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Six a minute: the next one in up to ten seconds.
    let seconds: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((9..=10).contains(&seconds), "{seconds}");
}

/// A command whose reader goes away (`leads admin ... | true`) ends without a panic: killed by
/// SIGPIPE as Unix tools are (or done before the reader left).
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("leads.db").display());
    for _ in 0..5 {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(r#""$0" admin company create --title Piped --database "$1" | (exec true); echo "${PIPESTATUS[0]}""#)
            .arg(LEADS)
            .arg(&database)
            .output()
            .expect("run bash");
        let status = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            status == "0" || status == "141",
            "exit status {status} (141 is SIGPIPE; 101 a panic): {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The database is as usable as before.
    assert!(admin(&database, &["company", "create", "--title", "After"]).starts_with("biz_"));
}
