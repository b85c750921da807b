//! Webhooks: event types, endpoint URLs, signing secrets and the retry schedule, parsed once.
//!
//! Delivery follows the Standard Webhooks specification (<https://www.standardwebhooks.com>), as
//! Whop's does: the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, and the
//! retry schedule below by default.

use super::ids::random_base62;
use std::fmt;
use std::time::Duration;

/// The events this server sends. Whop defines no lead events, so the `lead.*` ones are this
/// product's own; `export.completed` and `export.failed` are Whop's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A lead was recorded; `data` is the lead as `GET /leads/{id}` answers it.
    LeadCreated,
    /// A lead's referrer or metadata changed; `data` is the lead as it now is, with
    /// `previous_attributes` holding the old values of the fields that changed.
    LeadUpdated,
    /// The lead's user became a member of the company; `data.member` is set.
    LeadConverted,
    /// A lead was erased; `data` is `{"id"}`.
    LeadDeleted,
    /// An export finished (fired by exports).
    ExportCompleted,
    /// An export failed (fired by exports).
    ExportFailed,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::LeadCreated,
        EventType::LeadUpdated,
        EventType::LeadConverted,
        EventType::LeadDeleted,
        EventType::ExportCompleted,
        EventType::ExportFailed,
    ];

    /// The event's name on the wire, in Whop's dot form.
    pub fn name(self) -> &'static str {
        match self {
            EventType::LeadCreated => "lead.created",
            EventType::LeadUpdated => "lead.updated",
            EventType::LeadConverted => "lead.converted",
            EventType::LeadDeleted => "lead.deleted",
            EventType::ExportCompleted => "export.completed",
            EventType::ExportFailed => "export.failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// How the event is matched in a stored event list (see [`EventList::stored`]).
    pub fn stored_pattern(self) -> String {
        format!(",{},", self.name())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The events an endpoint subscribes to: no duplicates, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventList(Vec<EventType>);

impl EventList {
    /// Parses event names; the error names the first unknown one.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut events = Vec::new();
        for name in names {
            let event = EventType::parse(name).ok_or_else(|| {
                format!(
                    "{name:?} is not an event this server sends (one of {})",
                    EventType::ALL.map(EventType::name).join(", ")
                )
            })?;
            events.push(event);
        }
        events.sort();
        events.dedup();
        Ok(Self(events))
    }

    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }

    pub fn iter(&self) -> impl Iterator<Item = EventType> + '_ {
        self.0.iter().copied()
    }

    /// As the database keeps it: `,lead.created,lead.updated,`, so one substring search on
    /// [`EventType::stored_pattern`] answers whether an endpoint is subscribed. Empty is `,`.
    pub fn stored(&self) -> String {
        let mut text = String::from(",");
        for event in &self.0 {
            text.push_str(event.name());
            text.push(',');
        }
        text
    }

    /// Reads [`Self::stored`] back; unknown names (from a newer build) are skipped.
    pub fn from_stored(text: &str) -> Self {
        Self(
            text.split(',')
                .filter_map(EventType::parse)
                .collect::<Vec<_>>(),
        )
    }
}

/// Whop's payload versions. Every version is answered with this server's one payload shape.
pub const API_VERSIONS: [&str; 3] = ["v1", "v2", "v5"];

/// Endpoint URLs longer than this are refused.
pub const MAX_URL_LEN: usize = 2048;

/// An endpoint URL: absolute, `http` or `https`, with a host and no credentials. Whether the
/// host may be reached (server-side request forgery rules) is decided where it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.host().is_none() {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        Ok(Self(url.to_string()))
    }

    /// Wraps a URL read back from storage, which only ever holds parsed ones.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The prefix of the signing secrets this server issues, as Whop's `ws_` secrets.
pub const SECRET_PREFIX: &str = "ws_";

/// A new endpoint signing secret: `ws_` and 48 random base62 characters (285 bits). Deliveries
/// are signed with the secret's literal bytes, prefix included, as Whop signs them.
pub fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_base62(48))
}

/// A new message id (the `webhook-id` header and the envelope's `id`), made at `now_ms`:
/// `msg_`, the time as 12 hexadecimal digits, then 14 random characters (30 in all). Ids that
/// sort by time, as Svix's KSUID-based `msg_` ids do, append to the outbox's primary-key index
/// instead of touching a random page of it with every message; the stores make theirs the same
/// way in SQL.
pub fn new_message_id(now_ms: i64) -> String {
    format!("msg_{:012x}{}", now_ms.max(0), random_base62(14))
}

/// When each attempt of a message is made, counted from the previous failed one: the first
/// entry is the delay before the first attempt. Standard Webhooks' schedule by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h.
    fn default() -> Self {
        let secs = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];
        Self(secs.into_iter().map(Duration::from_secs).collect())
    }
}

impl RetrySchedule {
    /// Parses `0s,5s,5m,2h` (units `ms`, `s`, `m`, `h`; a bare number is seconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(str::trim)
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() {
            return Err("must list at least one delay".into());
        }
        Ok(Self(delays))
    }

    /// The delay before attempt `n` (1 for the first); `None` once the schedule is spent.
    pub fn before_attempt(&self, n: u32) -> Option<Duration> {
        self.0.get(n.checked_sub(1)? as usize).copied()
    }

    pub fn attempts(&self) -> usize {
        self.0.len()
    }
}

/// `250ms`, `5s`, `5m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 500ms, 5s, 5m or 2h");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_are_stored_with_commas_around_each_name() {
        let list = EventList::parse(["lead.updated", "lead.created", "lead.created"]).unwrap();
        assert_eq!(list.stored(), ",lead.created,lead.updated,");
        assert_eq!(EventList::from_stored(&list.stored()), list);
        assert!(list
            .stored()
            .contains(&EventType::LeadCreated.stored_pattern()));
        assert!(EventList::parse(["payment.succeeded"]).is_err());
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(WebhookUrl::parse("https://example.com/hook").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/").is_ok());
        assert!(WebhookUrl::parse("ftp://example.com/").is_err());
        assert!(WebhookUrl::parse("file:///etc/passwd").is_err());
        assert!(WebhookUrl::parse("not a url").is_err());
        assert!(WebhookUrl::parse("https://user:pw@example.com/").is_err());
    }

    #[test]
    fn the_default_schedule_is_standard_webhooks_and_settings_parse() {
        let default = RetrySchedule::default();
        assert_eq!(default.before_attempt(1), Some(Duration::ZERO));
        assert_eq!(default.before_attempt(2), Some(Duration::from_secs(5)));
        assert_eq!(default.before_attempt(10), Some(Duration::from_secs(86400)));
        assert_eq!(default.before_attempt(11), None);
        let set = RetrySchedule::parse("0s,1s,250ms,2m").unwrap();
        assert_eq!(set.before_attempt(3), Some(Duration::from_millis(250)));
        assert_eq!(set.before_attempt(4), Some(Duration::from_secs(120)));
        assert!(RetrySchedule::parse("1s,soon").is_err());
        assert!(RetrySchedule::parse("").is_err());
    }

    #[test]
    fn secrets_carry_whops_prefix() {
        let secret = new_secret();
        assert!(secret.starts_with("ws_"));
        assert_eq!(secret.len(), 51);
    }
}
