//! A private PostgreSQL cluster for one test, in a temporary directory on a free port, that the
//! test may stop and start at will. Never the shared server.
//!
//! `initdb` and `postgres` refuse to run as root; as root, the cluster runs as the `postgres`
//! user (or `nobody`), owning its directory.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivateCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Whom to run the server as, when we are root.
    user: Option<String>,
}

impl PrivateCluster {
    /// A running cluster, or `None` (with a loud note) when the server's binaries are missing.
    /// With `LEADS_REQUIRE_PG_FAULT_TESTS=1`, as CI sets, missing binaries fail the test.
    pub async fn start() -> Option<PrivateCluster> {
        let Some(bin) = find_binaries() else {
            let note = "PostgreSQL's server binaries (initdb, pg_ctl) were not found \
                        (pg_config --bindir, /usr/lib/postgresql/*/bin); install the server package";
            if std::env::var("LEADS_REQUIRE_PG_FAULT_TESTS").as_deref() == Ok("1") {
                panic!("{note}");
            }
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED (PostgreSQL fault test): {note} ***\n"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("leads-pg-")
            .tempdir()
            .expect("temp dir");
        let user = running_as_root().then(unprivileged_user);
        if let Some(user) = &user {
            let status = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown {user} {}", dir.path().display());
        }
        let port = free_port();
        let cluster = PrivateCluster {
            bin,
            dir,
            port,
            user,
        };
        let data = cluster.data();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            )
            .await;
        cluster.start_again().await;
        Some(cluster)
    }

    /// A URL for the cluster's own `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the hard way (`immediate`: no shutdown checkpoint, as after a crash),
    /// so starting it again replays the write-ahead log.
    pub async fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .await;
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn start_again(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
        .await;
    }

    /// Turns TLS on with the PEM files `cert` and `key`, takes connections over TCP only with
    /// TLS from then on (`hostssl` lines alone in `pg_hba.conf`), and restarts the server.
    pub async fn require_tls(&self, cert: &Path, key: &Path) {
        let data = self.dir.path().join("data");
        std::fs::copy(cert, data.join("server.crt")).expect("copy the server certificate");
        std::fs::copy(key, data.join("server.key")).expect("copy the server key");
        // The server refuses a key others may read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod the server key");
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).expect("read conf");
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(data.join("postgresql.conf"), conf).expect("write conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .expect("write pg_hba.conf");
        if let Some(user) = &self.user {
            let status = Command::new("chown")
                .arg(format!("{user}:"))
                .args([data.join("server.crt"), data.join("server.key")])
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the certificate files");
        }
        self.stop().await;
        self.start_again().await;
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program).args(args);
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        }
    }

    async fn run(&self, program: &str, args: &[&str]) {
        let mut command = tokio::process::Command::from(self.command(program, args));
        // The server's own working directory must be one it may read.
        command.current_dir(self.dir.path());
        let output = command
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\nstdout: {}\nstderr: {}\nserver log:\n{log}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .current_dir(self.dir.path())
            .output();
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_both(d)) {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|d| has_both(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().or_else(|| {
        let local = PathBuf::from("/usr/local/bin");
        has_both(&local).then_some(local)
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn unprivileged_user() -> String {
    let exists = |name: &str| {
        Command::new("id")
            .arg("-u")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if exists("postgres") {
        "postgres".into()
    } else {
        "nobody".into()
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
