//! A real browser for the dashboard's tests: Debian's `chromium` driven through `chromedriver`
//! over WebDriver (fantoccini). The test starts chromedriver on a free loopback port, with a
//! fresh profile and every network feature a headless test does not need turned off; nothing
//! is downloaded. `.ci/run` installs both packages.

use fantoccini::{Client, ClientBuilder};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A browser session and the chromedriver behind it; both end when it is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn find(names: &[&str]) -> String {
    for name in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let path = format!("{dir}/{name}");
            if std::path::Path::new(&path).exists() {
                return path;
            }
        }
    }
    panic!(
        "none of {names:?} is installed: the dashboard's browser tests need Debian's chromium and \
         chromium-driver (apt-get install -y chromium chromium-driver), as .ci/run installs them"
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` pixels wide.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_path = find(&["chromedriver"]);
        let chromium = find(&["chromium"]);
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // Downloads go to the profile's own folder, unasked, where the test reads them.
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut driver = Some(driver);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("TLS roots")
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => {
                    if let Some(mut driver) = driver.take() {
                        let _ = driver.kill();
                    }
                    panic!("cannot start a WebDriver session on chromedriver: {error}")
                }
            }
        };
        Browser {
            client,
            driver: driver.take().expect("driver"),
            profile,
        }
    }

    /// Resizes the viewport to `width` × `height` CSS pixels: the window minus its chrome.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("inner size");
        let dx = width as i64 - inner[0].as_i64().unwrap_or(width as i64);
        let dy = height as i64 - inner[1].as_i64().unwrap_or(height as i64);
        if dx != 0 || dy != 0 {
            self.client
                .set_window_size((width as i64 + dx) as u32, (height as i64 + dy) as u32)
                .await
                .expect("resize");
        }
    }

    /// Waits (up to thirty seconds) for a download to finish in the profile's downloads folder;
    /// answers its name and contents. Files in progress (`.crdownload`) are not finished.
    pub async fn downloaded(&self) -> (String, Vec<u8>) {
        let dir = self.profile.path().join("downloads");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done = std::fs::read_dir(&dir)
                .expect("downloads dir")
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| {
                    // Chromium writes a download to a hidden `.org.chromium.Chromium.*`
                    // temporary file or to `<name>.crdownload`, and renames it to its
                    // own name only once it is whole.
                    let hidden = path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                    !hidden && path.extension().is_some_and(|e| e != "crdownload")
                });
            if let Some(path) = done {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&path).expect("the download");
                std::fs::remove_file(&path).expect("remove the download");
                return (name, bytes);
            }
            assert!(Instant::now() < deadline, "no download finished in {dir:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the WebDriver session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
