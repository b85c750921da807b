//! TLS to PostgreSQL, as libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` describe it,
//! against a private cluster that takes TCP connections only over TLS, with a certificate from
//! a CA the test makes. Never the shared server.

mod common;

use common::cluster::PrivateCluster;
use common::{Backend, TestApp};
use leads_server::storage;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA, a server certificate it signed for `127.0.0.1` and `db.test`, and a second CA that
/// signed nothing the server holds.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = Certificates { dir };
        for ca in ["ca", "other-ca"] {
            certs.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=leads test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        certs.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=db.test",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            certs.path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:db.test\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        certs.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        certs
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl (install the openssl package)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A private cluster that takes TCP connections only over TLS, and the test's certificates.
async fn tls_cluster() -> Option<(PrivateCluster, Certificates)> {
    let cluster = PrivateCluster::start().await?;
    let certs = Certificates::make();
    cluster
        .require_tls(&certs.path("server.crt"), &certs.path("server.key"))
        .await;
    Some((cluster, certs))
}

/// The cluster's URL with `query` added, reached as `host`.
fn url(cluster: &PrivateCluster, host: &str, query: &str) -> String {
    let url = cluster.url().replace("127.0.0.1", host);
    format!("{url}?{query}")
}

fn file(path: &Path) -> String {
    path.display().to_string()
}

/// Why opening the database at `url` failed; panics when it opened.
async fn open_error(url: &str) -> String {
    match storage::open(url).await {
        Ok(_) => panic!("{url} opened, but should not have"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_servers_ca_connects_and_serves_requests() {
    let Some((cluster, certs)) = tls_cluster().await else {
        return;
    };
    let url = url(
        &cluster,
        "127.0.0.1",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            file(&certs.path("ca.crt"))
        ),
    );
    let app = TestApp::instance_on(&url, Backend::Postgres).await;
    let company = app.company(0, None).await;
    let user = app.user().await;
    let (status, _, lead) = app
        .send(
            Method::POST,
            "/api/v1/leads",
            &company.key,
            Some(&json!({"company_id": company.id, "user_id": user.id})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    let page = app
        .list(&company.key, &format!("company_id={}", company.id))
        .await;
    assert_eq!(page.ids, vec![lead["id"].as_str().unwrap().to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_another_ca_fails_naming_the_unknown_ca() {
    let Some((cluster, certs)) = tls_cluster().await else {
        return;
    };
    let error = open_error(&url(
        &cluster,
        "127.0.0.1",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            file(&certs.path("other-ca.crt"))
        ),
    ))
    .await;
    assert!(error.contains("unknown CA"), "{error}");
    assert!(error.contains("sslrootcert"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_by_a_host_name_the_certificate_does_not_list_fails_naming_it() {
    let Some((cluster, certs)) = tls_cluster().await else {
        return;
    };
    let ca = format!("sslrootcert={}", file(&certs.path("ca.crt")));
    let error = open_error(&url(
        &cluster,
        "localhost",
        &format!("sslmode=verify-full&{ca}"),
    ))
    .await;
    assert!(error.contains("host name mismatch"), "{error}");
    // verify-ca checks the chain alone, so the same host name is fine there.
    storage::open(&url(
        &cluster,
        "localhost",
        &format!("sslmode=verify-ca&{ca}"),
    ))
    .await
    .expect("verify-ca ignores the host name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_without_a_ca_connects_encrypted() {
    let Some((cluster, _certs)) = tls_cluster().await else {
        return;
    };
    // The cluster takes only TLS over TCP, so opening at all proves the connection encrypted.
    storage::open(&url(&cluster, "127.0.0.1", "sslmode=require"))
        .await
        .expect("require connects without checking the certificate");
    // So does the default, prefer.
    storage::open(&cluster.url())
        .await
        .expect("prefer connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_against_a_server_that_takes_only_tls_fails_saying_so() {
    let Some((cluster, _certs)) = tls_cluster().await else {
        return;
    };
    let error = open_error(&url(&cluster, "127.0.0.1", "sslmode=disable")).await;
    assert!(error.contains("no encryption"), "{error}");
    assert!(error.contains("sslmode=require"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_certificate_that_is_not_there_fails_naming_the_file() {
    let Some((cluster, certs)) = tls_cluster().await else {
        return;
    };
    let missing = file(&certs.path("missing.crt"));
    let error = open_error(&url(
        &cluster,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={missing}"),
    ))
    .await;
    assert!(error.contains("sslrootcert"), "{error}");
    assert!(error.contains(&missing), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_against_a_server_without_tls_fails_saying_so() {
    let Some(cluster) = PrivateCluster::start().await else {
        return;
    };
    let error = open_error(&url(&cluster, "127.0.0.1", "sslmode=require")).await;
    assert!(error.contains("does not support TLS"), "{error}");
}
