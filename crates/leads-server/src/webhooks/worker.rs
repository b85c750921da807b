//! The delivery worker: runs inside `leads serve`, leases due outbox messages, sends each, and
//! records the attempt and the next one.
//!
//! Woken when this process commits a message, and otherwise every [`POLL`], so messages written
//! by another instance, and retries coming due, are found too. A message is leased for
//! [`Settings::lease`](super::Settings::lease) (longer than any attempt can take), so no two
//! workers send it at once; one whose worker died is sent again once its lease ends. On
//! shutdown the worker leases nothing more and waits for the attempts in flight to be recorded;
//! one cut short is sent again later.
//!
//! Each of the [`IN_FLIGHT`] slots is held from the lease until the attempt is recorded, so a
//! slow database bounds what waits in memory.

use super::{envelope, Sender};
use crate::domain::{ids::random_base62, DeliveryId, Timestamp};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::storage::webhooks::{
    AttemptRecord, DeliveryRow, LeasedMessage, WebhookStore, DELIVERY_RETENTION_MS,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// How often the outbox is looked at when nothing woke the worker.
pub const POLL: Duration = Duration::from_millis(200);
/// Attempts in flight at once, per instance, from lease to record.
const IN_FLIGHT: usize = 128;
/// How often old delivery attempts are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(10 * 60);
/// Attempts recorded in one write at most.
const RECORD_BATCH: usize = 256;
/// How often the outbox is tidied ([`WebhookStore::tidy_outbox`]) while attempts are being
/// recorded.
const TIDY_EVERY: Duration = Duration::from_secs(5);

/// A running worker; [`Worker::stop`] ends it. Dropping it leaves the worker running.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Starts the worker on `store`.
    pub fn start(store: Arc<dyn WebhookStore>, sender: Arc<Sender>, metrics: Arc<Metrics>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, sender, metrics, stopped));
        Self { stop, task }
    }

    /// Leases nothing more and waits, at most `grace`, for attempts in flight to be recorded.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("webhook attempts still in flight at shutdown will be retried");
        }
    }
}

async fn run(
    store: Arc<dyn WebhookStore>,
    sender: Arc<Sender>,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let wakeup = store.outbox_wakeup();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut in_flight = JoinSet::new();
    let (records, to_record) = mpsc::unbounded_channel();
    // Told when recorded attempts free their slots, so a backlog is leased again at once rather
    // than at the next poll.
    let freed = Arc::new(Notify::new());
    let recorded = Arc::new(AtomicU64::new(0));
    let recorder = tokio::spawn(record(
        store.clone(),
        to_record,
        freed.clone(),
        recorded.clone(),
    ));
    let tidier = tokio::spawn(tidy(store.clone(), recorded, stopped.clone()));
    let mut last_forget = tokio::time::Instant::now();
    // Whether a commit of this process woke the worker: then messages are due, and the lease is
    // tried without first asking whether any are.
    let mut woken = false;
    loop {
        let work = Work {
            store: &store,
            sender: &sender,
            metrics: &metrics,
            records: &records,
        };
        drain(work, &slots, &mut in_flight, woken).await;
        while in_flight.try_join_next().is_some() {}
        if last_forget.elapsed() >= FORGET_EVERY {
            last_forget = tokio::time::Instant::now();
            forget(&store).await;
        }
        woken = tokio::select! {
            _ = stop_asked(&mut stopped) => break,
            _ = wakeup.notified() => true,
            _ = freed.notified() => false,
            _ = tokio::time::sleep(POLL) => false,
        };
    }
    while in_flight.join_next().await.is_some() {}
    drop(records);
    let _ = recorder.await;
    let _ = tidier.await;
}

/// What attempts need, borrowed from the worker.
#[derive(Clone, Copy)]
struct Work<'a> {
    store: &'a Arc<dyn WebhookStore>,
    sender: &'a Arc<Sender>,
    metrics: &'a Arc<Metrics>,
    records: &'a mpsc::UnboundedSender<Recorded>,
}

/// An attempt to record, with the slot it holds until it is recorded. (The channel needs no
/// bound of its own: the slots bound it.)
type Recorded = (AttemptRecord, OwnedSemaphorePermit);

/// Records attempts as they come, as many as have queued up (at most [`RECORD_BATCH`]) in one
/// write: under load one transaction records a batch instead of each attempt its own. Their
/// slots are freed once the write is done, and `freed` told; `recorded` counts the attempts
/// written. When the worker stops, what is queued is recorded.
async fn record(
    store: Arc<dyn WebhookStore>,
    mut records: mpsc::UnboundedReceiver<Recorded>,
    freed: Arc<Notify>,
    recorded: Arc<AtomicU64>,
) {
    while let Some(first) = records.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match records.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let (attempts, slots): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        // A batch that cannot be written leaves its messages leased: they are sent again when
        // their leases end (at least once, never lost).
        let n = attempts.len();
        if let Err(error) = store
            .record_attempts(attempts, Timestamp::now().as_millis())
            .await
        {
            tracing::warn!(%error, attempts = n, "cannot record webhook attempts; they will be retried");
        } else {
            recorded.fetch_add(n as u64, Ordering::Relaxed);
        }
        drop(slots);
        freed.notify_one();
    }
}

/// Every [`TIDY_EVERY`], when attempts were recorded since the last time (each success
/// deletes its message), tidies the outbox, until the worker stops or the store says it cannot.
async fn tidy(
    store: Arc<dyn WebhookStore>,
    recorded: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tidied_at = 0;
    loop {
        tokio::select! {
            _ = stop_asked(&mut stopped) => return,
            _ = tokio::time::sleep(TIDY_EVERY) => {}
        }
        let now = recorded.load(Ordering::Relaxed);
        if now == tidied_at {
            continue;
        }
        tidied_at = now;
        match store.tidy_outbox().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => tracing::warn!(%error, "cannot tidy the webhook outbox; will retry"),
        }
    }
}

/// Resolves once [`Worker::stop`] is called; never if the [`Worker`] was dropped instead (the
/// worker then runs as long as the process).
async fn stop_asked(stopped: &mut watch::Receiver<bool>) {
    if stopped.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Leases and starts due messages while there are any and slots to send them. With `due` (a
/// commit of this process woke the worker), the first lease is tried without first asking
/// whether any message is due: one statement fewer for each wake-up under load.
async fn drain(work: Work<'_>, slots: &Arc<Semaphore>, in_flight: &mut JoinSet<()>, mut due: bool) {
    let Work {
        store,
        sender,
        metrics,
        records,
    } = work;
    loop {
        let free = slots.available_permits();
        if free == 0 {
            return;
        }
        let now = Timestamp::now().as_millis();
        if !std::mem::take(&mut due) {
            match store.has_due_messages(now).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot look at the webhook outbox; will retry");
                    return;
                }
            }
        }
        // A token of its own for each lease taken: what one call leased is told apart from what
        // an earlier call of this worker leased and has not yet recorded.
        let lease = format!("lease_{}", random_base62(16));
        let leased = match store
            .lease_messages(
                now,
                sender.settings().lease.as_millis() as i64,
                &lease,
                free,
            )
            .await
        {
            Ok(leased) => leased,
            Err(error) => {
                tracing::warn!(%error, "cannot lease webhook messages; will retry");
                return;
            }
        };
        let got = leased.len();
        for message in leased {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (sender, lease) = (sender.clone(), lease.to_owned());
            let (metrics, records) = (metrics.clone(), records.clone());
            in_flight.spawn(async move {
                if let Some(record) = attempt(&sender, &metrics, message, &lease).await {
                    let _ = records.send((record, slot));
                }
            });
        }
        if got < free {
            return;
        }
    }
}

/// Sends one message; answers what to record of it.
async fn attempt(
    sender: &Sender,
    metrics: &Metrics,
    m: LeasedMessage,
    lease: &str,
) -> Option<AttemptRecord> {
    let body = match envelope(
        &m.message_id,
        &m.event_type,
        m.company.as_str(),
        m.created_at,
        &m.data,
    ) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, message = m.message_id, "cannot make a webhook body");
            return None;
        }
    };
    let sent_at = Timestamp::now().as_millis();
    let answer = sender.send(&m.url, &m.message_id, &body, &m.secret).await;
    let now = Timestamp::now().as_millis();
    let number = u32::try_from(m.attempts + 1).unwrap_or(u32::MAX);
    let gone = answer.status == 410;
    let outcome = match answer.status {
        _ if answer.success() => "success",
        0 => "unreachable",
        410 => "gone",
        _ => "failure",
    };
    metrics
        .webhook_attempts
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
    if answer.success() {
        let waited = (now - m.created_at).max(0) as f64 / 1000.0;
        metrics.webhook_delivery_latency.observe(waited);
    }
    let next_attempt_at = if answer.success() || gone {
        None
    } else {
        sender
            .settings()
            .retry_schedule
            .before_attempt(number.saturating_add(1))
            .map(|delay| {
                let delay = delay.max(answer.retry_after.unwrap_or_default());
                now + delay.as_millis() as i64
            })
    };
    if let Some(error) = &answer.error {
        tracing::info!(webhook = %m.webhook, message = m.message_id, %error, "webhook attempt failed");
    }
    Some(AttemptRecord {
        row: m.row.clone(),
        lease: lease.to_owned(),
        delivery: DeliveryRow {
            id: DeliveryId::generate_at(sent_at),
            webhook: m.webhook.clone(),
            message_id: m.message_id.clone(),
            event_type: m.event_type.clone(),
            request_body: body,
            response_code: i64::from(answer.status),
            response_body: answer.logged_body(),
            total_time_ms: answer.elapsed.as_millis() as i64,
            sent_at,
            success: answer.success(),
            message_row: Some(m.row.clone()),
            replayed_from: m.replayed_from.clone(),
        },
        next_attempt_at,
        first_attempt: m.attempts == 0,
        gone,
    })
}

async fn forget(store: &Arc<dyn WebhookStore>) {
    match store.forget_orphaned_messages().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "forgot webhook messages of deleted endpoints"),
        Err(error) => {
            tracing::warn!(%error, "forgetting messages of deleted endpoints failed; will retry")
        }
    }
    let before = Timestamp::now().as_millis() - DELIVERY_RETENTION_MS;
    loop {
        match store.forget_deliveries(before, 1_000).await {
            Ok(n) if n >= 1_000 => continue,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, "forgetting old webhook deliveries failed; will retry");
                return;
            }
        }
    }
}
