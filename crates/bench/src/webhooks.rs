//! The webhook scenarios' receiver: answers 200 at once and records, for each delivery, the time
//! from the commit that wrote the event (the envelope's `timestamp`) to its arrival.
//!
//! It runs on a runtime and thread of its own, so the load generator's single thread does not
//! delay it (nor it the load generator).

use crate::load::{new_histogram, Outcome};
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    latency: Option<Histogram<u64>>,
}

pub struct Receiver {
    pub url: String,
    tally: Arc<Mutex<Tally>>,
}

impl Receiver {
    pub fn start() -> Result<Self> {
        let tally: Arc<Mutex<Tally>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr: SocketAddr = listener.local_addr()?;
        let state = tally.clone();
        on_own_runtime("webhook-receiver", async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("receiver socket");
            let app = axum::Router::new()
                .route("/hook", axum::routing::post(receive))
                .with_state(state);
            let _ = axum::serve(listener, app).await;
        })?;
        Ok(Self {
            url: format!("http://{addr}/hook"),
            tally,
        })
    }

    /// Forgets what was received so far.
    pub fn reset(&self) {
        *self.tally.lock().unwrap() = Tally::default();
    }

    pub fn count(&self) -> u64 {
        self.tally.lock().unwrap().count
    }

    /// Waits until nothing more arrives for half a second (the queue is drained), at most
    /// `cap`.
    pub async fn settle(&self, cap: Duration) {
        let started = Instant::now();
        let mut seen = self.count();
        while started.elapsed() < cap {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.count();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// What arrived since the last reset, as a run: deliveries per second between the first
    /// and the last, and commit-to-delivery latencies.
    pub fn outcome(&self) -> Outcome {
        let tally = self.tally.lock().unwrap();
        let elapsed = match (tally.first, tally.last) {
            (Some(first), Some(last)) if last > first => last - first,
            _ => Duration::from_millis(1),
        };
        Outcome {
            ok: tally.count,
            errors: 0,
            first_error: None,
            elapsed,
            latency: tally.latency.clone().unwrap_or_else(new_histogram),
        }
    }
}

async fn receive(State(tally): State<Arc<Mutex<Tally>>>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let wall = leads_types::Timestamp::now().as_millis();
    let committed = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| {
            event["timestamp"]
                .as_str()
                .and_then(leads_types::Timestamp::parse)
        })
        .map(|t| t.as_millis());
    let mut tally = tally.lock().unwrap();
    tally.count += 1;
    tally.first.get_or_insert(now);
    tally.last = Some(now);
    if let Some(committed) = committed {
        // Milliseconds, the envelope's precision, recorded in microseconds like every latency.
        let micros = ((wall - committed).max(0) as u64 * 1000).max(1);
        let latency = tally.latency.get_or_insert_with(new_histogram);
        let _ = latency.record(micros.min(60_000_000));
    }
    "{}"
}

/// The machine's ceiling for creates with an endpoint: every create's answer is sent on to the
/// receiver by the load generator, through the server's own webhook sender (the envelope, the
/// Standard Webhooks signature, the HTTP request and the answer read, as
/// [`leads_server::webhooks::Sender`] does them), with no endpoint on the server; the echo does
/// no database work (the creates still write as ever). Creates/s here beside plain creates is
/// the most an outbox design sending through that sender could keep on this machine while one
/// HTTP delivery per event shares its cores, provided the echoes keep up.
///
/// The sends run on a thread and runtime of their own, at most [`ECHO_IN_FLIGHT`] at once (the
/// server's worker holds as many), fed by an unbounded queue: what the sender cannot keep up
/// with waits, as undelivered messages wait in an outbox.
pub struct Echo {
    queue: tokio::sync::mpsc::UnboundedSender<Bytes>,
}

/// Sends in flight at once, as the server's worker allows.
const ECHO_IN_FLIGHT: usize = 128;

impl Echo {
    /// Sends to `url` (the receiver's) events of `company`, signed with a new secret.
    pub fn start(url: &str, company: &str) -> Result<Self> {
        use leads_server::domain::webhooks::{new_message_id, new_secret, WebhookUrl};
        use leads_server::webhooks::{envelope, Sender, Settings};
        let sender = Arc::new(
            Sender::new(Settings {
                allow_private_targets: true,
                ..Settings::default()
            })
            .map_err(anyhow::Error::msg)?,
        );
        let url = Arc::new(WebhookUrl::parse(url).map_err(anyhow::Error::msg)?);
        let (secret, company) = (Arc::new(new_secret()), Arc::new(company.to_owned()));
        let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        on_own_runtime("webhook-echo", async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(ECHO_IN_FLIGHT));
            while let Some(lead) = queued.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (sender, url) = (sender.clone(), url.clone());
                let (secret, company) = (secret.clone(), company.clone());
                tokio::spawn(async move {
                    let now = leads_types::Timestamp::now().as_millis();
                    let id = new_message_id(now);
                    let data = String::from_utf8_lossy(&lead);
                    if let Ok(body) = envelope(&id, "lead.created", &company, now, &data) {
                        sender.send(&url, &id, &body, &secret).await;
                    }
                    drop(slot);
                });
            }
            // The workload is done: finish the sends in flight before the runtime goes.
            let _ = slots.acquire_many(ECHO_IN_FLIGHT as u32).await;
        })?;
        Ok(Self { queue })
    }
}

/// Creates, each answer echoed to the receiver by an [`Echo`].
pub struct EchoedCreate {
    pub create: crate::scenarios::Create,
    pub echo: Echo,
}

impl crate::load::Workload for EchoedCreate {
    fn request(
        &self,
        connection: usize,
        sequence: u64,
    ) -> hyper::Request<http_body_util::Full<Bytes>> {
        self.create.request(connection, sequence)
    }

    fn answered(&self, body: Bytes) {
        let _ = self.echo.queue.send(body);
    }
}

/// Runs `work` on a thread named `name`, on a one-worker runtime of its own, so the load
/// generator's single thread neither delays it nor is delayed by it.
fn on_own_runtime(
    name: &str,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .with_context(|| format!("cannot make the {name} runtime"))?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || runtime.block_on(work))
        .with_context(|| format!("cannot start the {name} thread"))?;
    Ok(())
}
