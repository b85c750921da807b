//! Pagination in one place: page sizes, keyset cursors and the `page_info` flags.
//!
//! A list is ordered newest first: `created_at` descending, then `id` descending. A cursor is a
//! keyset position `(created_at, id)`, never an offset, so inserts and deletes during a walk never
//! make a lead be skipped or repeated, and the cursor of a deleted lead still works. Cursors are
//! bound to their company by an HMAC keyed with a secret kept in the database, so every instance
//! and every restart accepts the same cursors, and an altered or foreign cursor is refused.
//!
//! Storage backends execute a [`Scan`] and whatever [`FlagCheck`]s [`settle`] leaves open; the
//! rules for what those are live only here.

use crate::domain::{CompanyId, LeadId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: u8 = 20;
pub const MAX_PAGE_SIZE: u8 = 100;

/// A page size in `1..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u8);

impl PageSize {
    pub fn new(n: i64) -> Option<Self> {
        (1..=i64::from(MAX_PAGE_SIZE))
            .contains(&n)
            .then_some(Self(n as u8))
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(DEFAULT_PAGE_SIZE)
    }
}

/// A lead's place in the order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub created_at: i64,
    pub id: LeadId,
}

/// Anything that sits at a position in the list: a stored lead row.
pub trait Positioned {
    fn position(&self) -> Position;
}

/// Which end of the window the page is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `first=n`: the newest `n` of the window.
    Forward,
    /// `last=n`: the oldest `n` of the window.
    Backward,
}

/// What a client asked for, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: PageSize,
    pub direction: Direction,
    /// `after`: only leads older than this.
    pub after: Option<Position>,
    /// `before`: only leads newer than this.
    pub before: Option<Position>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            size: PageSize::default(),
            direction: Direction::Forward,
            after: None,
            before: None,
        }
    }
}

/// Order a scan reads rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// One index range read: rows strictly between the bounds, in `order`, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub order: Order,
    pub older_than: Option<Position>,
    pub newer_than: Option<Position>,
    pub limit: usize,
}

/// One end of the range a read covers: the leads beyond a position, or at it and beyond. Scans
/// stop short of their cursors; [`Probes`] start at theirs.
#[derive(Debug, Clone, Copy)]
pub struct Edge<'a> {
    pub at: &'a Position,
    pub inclusive: bool,
}

impl<'a> Edge<'a> {
    pub fn beyond(at: &'a Position) -> Self {
        Self {
            at,
            inclusive: false,
        }
    }

    pub fn from(at: &'a Position) -> Self {
        Self {
            at,
            inclusive: true,
        }
    }
}

/// The checks that answer the `page_info` flags a scan cannot: whether any lead matching the
/// filters lies at or beyond a cursor. Both depend only on the request, never on the rows the scan
/// finds, so a backend runs them in the scan's own statement: one statement, one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// Set with `before`: does a matching lead sit at or older than this position?
    pub at_or_older_than: Option<Position>,
    /// Set with `after`: does a matching lead sit at or newer than this position?
    pub at_or_newer_than: Option<Position>,
}

/// What [`Probes`] found; a probe not asked for is `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeAnswers {
    pub at_or_older: bool,
    pub at_or_newer: bool,
}

/// The scan that reads a page: one row more than asked, to see past the page's far end.
pub fn plan(request: &PageRequest) -> Scan {
    Scan {
        order: match request.direction {
            Direction::Forward => Order::NewestFirst,
            Direction::Backward => Order::OldestFirst,
        },
        older_than: request.after.clone(),
        newer_than: request.before.clone(),
        limit: request.size.get() + 1,
    }
}

/// The probes a page needs besides its scan: one at each cursor the request gives.
pub fn probes(request: &PageRequest) -> Probes {
    Probes {
        at_or_older_than: request.before.clone(),
        at_or_newer_than: request.after.clone(),
    }
}

/// A page in list order with its two flags.
#[derive(Debug)]
pub struct Settled<T> {
    pub rows: Vec<T>,
    pub has_next: bool,
    pub has_previous: bool,
}

/// Turns the rows of [`plan`]'s scan and the answers of [`probes`] into the page and its flags.
///
/// The flags speak of the whole filtered list, not of the cursor window: `has_next_page` is
/// whether any matching lead is older than the page's last one, `has_previous_page` whether any
/// is newer than its first. An empty page has both false.
///
/// The far end of the scan is known from its extra row. Otherwise an end is open only where a
/// cursor bounds it; then no matching lead lies between the page and that cursor (the scan read
/// that whole stretch), so "a lead beyond the page's end" is "a lead at or beyond the cursor",
/// which is what the probe there answered.
pub fn settle<T>(request: &PageRequest, mut rows: Vec<T>, found: ProbeAnswers) -> Settled<T> {
    let size = request.size.get();
    let saw_beyond = rows.len() > size;
    rows.truncate(size);
    if request.direction == Direction::Backward {
        rows.reverse();
    }
    if rows.is_empty() {
        return Settled {
            rows,
            has_next: false,
            has_previous: false,
        };
    }
    let older = request.before.is_some() && found.at_or_older;
    let newer = request.after.is_some() && found.at_or_newer;
    let (has_next, has_previous) = match request.direction {
        Direction::Forward => (saw_beyond || older, newer),
        Direction::Backward => (older, saw_beyond || newer),
    };
    Settled {
        rows,
        has_next,
        has_previous,
    }
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor this server issued")]
    Malformed,
    #[error("was altered, or belongs to another company or another query or email")]
    Forged,
}

const CURSOR_VERSION: u8 = 1;
/// The first byte of [`CursorCodec::encode_key`] cursors.
const KEY_CURSOR_VERSION: u8 = 2;
const TAG_LEN: usize = 16;
const ID_SUFFIX_LEN: usize = 13;
const CURSOR_LEN: usize = 1 + 8 + ID_SUFFIX_LEN + TAG_LEN;

/// Makes and checks cursors with the deployment's secret.
#[derive(Clone)]
pub struct CursorCodec {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec { secret: <redacted> }")
    }
}

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    fn tag(&self, company: &CompanyId, scope: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(company.as_str().as_bytes());
        mac.update(scope);
        mac.update(payload);
        mac
    }

    /// The cursor of `position`, a stored lead's, bound to `company`. The company is any id the
    /// API accepts (up to 255 characters of any script): its bytes are hashed ahead of a payload
    /// of fixed length, so no two companies' cursors can be made to verify alike.
    pub fn encode(&self, company: &CompanyId, position: &Position) -> String {
        self.encode_scoped(company, b"", position)
    }

    /// The cursor of `position` bound to `company` and also to `scope`, the filters a cursor must
    /// be sent back with (the search's [`LeadSearch::cursor_scope`](crate::domain::LeadSearch::cursor_scope)).
    /// `scope` is empty or starts with a NUL, which no company id holds and no payload starts
    /// with, so a scoped cursor never verifies for another scope or for none.
    pub fn encode_scoped(&self, company: &CompanyId, scope: &[u8], position: &Position) -> String {
        debug_assert!(
            scope.first().is_none_or(|b| *b == 0),
            "scope starts with NUL"
        );
        debug_assert!(position.id.is_generated(), "a stored lead's id");
        let mut bytes = Vec::with_capacity(CURSOR_LEN);
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&position.created_at.to_be_bytes());
        bytes.extend_from_slice(&position.id.as_str().as_bytes()[LeadId::PREFIX.len()..]);
        let tag = self.tag(company, scope, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor of a place `(at, id)` in another newest-first list than leads (a company's
    /// webhooks, an endpoint's deliveries), bound to `scope`, which names that list: a cursor
    /// of one list is refused by every other.
    pub fn encode_key(&self, scope: &str, at: i64, id: &str) -> String {
        let mut bytes = Vec::with_capacity(1 + 8 + id.len() + TAG_LEN);
        bytes.push(KEY_CURSOR_VERSION);
        bytes.extend_from_slice(&at.to_be_bytes());
        bytes.extend_from_slice(id.as_bytes());
        let tag = self.key_tag(scope, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The place an [`Self::encode_key`] cursor of `scope` names.
    pub fn decode_key(&self, scope: &str, text: &str) -> Result<(i64, String), CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        if bytes.len() < 1 + 8 + 1 + TAG_LEN || bytes[0] != KEY_CURSOR_VERSION {
            return Err(CursorError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        self.key_tag(scope, payload)
            .verify_truncated_left(tag)
            .map_err(|_| CursorError::Forged)?;
        let at = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        let id = std::str::from_utf8(&payload[9..]).map_err(|_| CursorError::Malformed)?;
        Ok((at, id.to_owned()))
    }

    fn key_tag(&self, scope: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&(scope.len() as u64).to_be_bytes());
        mac.update(scope.as_bytes());
        mac.update(payload);
        mac
    }

    pub fn decode(&self, company: &CompanyId, text: &str) -> Result<Position, CursorError> {
        self.decode_scoped(company, b"", text)
    }

    /// The position of a cursor made by [`Self::encode_scoped`] with the same company and scope.
    pub fn decode_scoped(
        &self,
        company: &CompanyId,
        scope: &[u8],
        text: &str,
    ) -> Result<Position, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        if bytes.len() != CURSOR_LEN || bytes[0] != CURSOR_VERSION {
            return Err(CursorError::Malformed);
        }
        let (payload, tag) = bytes.split_at(CURSOR_LEN - TAG_LEN);
        self.tag(company, scope, payload)
            .verify_truncated_left(tag)
            .map_err(|_| CursorError::Forged)?;
        let created_at = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        let suffix = std::str::from_utf8(&payload[9..]).map_err(|_| CursorError::Malformed)?;
        let id = LeadId::parse(&format!("{}{suffix}", LeadId::PREFIX))
            .map_err(|_| CursorError::Malformed)?;
        Ok(Position { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(created_at: i64) -> Position {
        Position {
            created_at,
            id: LeadId::generate(),
        }
    }

    #[test]
    fn key_cursors_round_trip_in_their_own_list_only() {
        let codec = CursorCodec::new(b"secret");
        let cursor = codec.encode_key("webhooks:biz_1", 17, "hook_abc");
        assert_eq!(
            codec.decode_key("webhooks:biz_1", &cursor),
            Ok((17, "hook_abc".to_owned()))
        );
        assert_eq!(
            codec.decode_key("webhooks:biz_2", &cursor),
            Err(CursorError::Forged)
        );
        assert_eq!(
            codec.decode_key("webhooks:biz_1", "nope"),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_company_only() {
        let codec = CursorCodec::new(b"secret");
        let company = CompanyId::generate();
        let at = position(1_700_000_000_123);
        let cursor = codec.encode(&company, &at);
        assert_eq!(codec.decode(&company, &cursor), Ok(at));
        assert_eq!(
            codec.decode(&CompanyId::generate(), &cursor),
            Err(CursorError::Forged)
        );
        assert_eq!(
            CursorCodec::new(b"other").decode(&company, &cursor),
            Err(CursorError::Forged)
        );
    }

    #[test]
    fn cursors_bind_long_and_odd_company_ids_exactly() {
        let codec = CursorCodec::new(b"secret");
        let at = position(1_700_000_000_123);
        let long = CompanyId::parse(&"é".repeat(crate::domain::ids::MAX_ID_CHARS)).unwrap();
        let four = CompanyId::parse("4").unwrap();
        let forty = CompanyId::parse("40").unwrap();
        for company in [&long, &four, &forty] {
            let cursor = codec.encode(company, &at);
            assert_eq!(codec.decode(company, &cursor), Ok(at.clone()));
        }
        // A company whose id extends another's does not accept the other's cursors.
        assert_eq!(
            codec.decode(&forty, &codec.encode(&four, &at)),
            Err(CursorError::Forged)
        );
        assert_eq!(
            codec.decode(&four, &codec.encode(&forty, &at)),
            Err(CursorError::Forged)
        );
    }

    #[test]
    fn altered_and_truncated_cursors_are_refused() {
        let codec = CursorCodec::new(b"secret");
        let company = CompanyId::generate();
        let cursor = codec.encode(&company, &position(42));
        let mut altered = cursor.clone().into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(codec.decode(&company, &altered).is_err());
        assert_eq!(
            codec.decode(&company, &cursor[..cursor.len() - 2]),
            Err(CursorError::Malformed)
        );
        assert_eq!(codec.decode(&company, "!!!"), Err(CursorError::Malformed));
        assert_eq!(codec.decode(&company, ""), Err(CursorError::Malformed));
    }

    /// `settle` with the probes' answers agrees with the flags' definition, checked against the
    /// whole list: every window, direction and size over lists with ties in time, with cursors
    /// on leads that exist and on ones that were deleted.
    #[test]
    fn flags_from_probes_match_their_definition_over_the_whole_list() {
        let ids: Vec<LeadId> = (0..12).map(|_| LeadId::generate()).collect();
        // Positions, two leads to a millisecond; the odd ones are "deleted" (not in the list).
        let all: Vec<Position> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Position {
                created_at: (i / 2) as i64,
                id: id.clone(),
            })
            .collect();
        let list: Vec<Position> = all.iter().step_by(2).cloned().collect();
        let cursors: Vec<Option<Position>> = std::iter::once(None)
            .chain(all.iter().cloned().map(Some))
            .collect();
        let mut checked = 0;
        for after in &cursors {
            for before in &cursors {
                for direction in [Direction::Forward, Direction::Backward] {
                    for size in 1..=7 {
                        let request = PageRequest {
                            size: PageSize::new(size).unwrap(),
                            direction,
                            after: after.clone(),
                            before: before.clone(),
                        };
                        let scan = plan(&request);
                        let mut window: Vec<Position> = list
                            .iter()
                            .filter(|p| scan.older_than.as_ref().is_none_or(|o| *p < o))
                            .filter(|p| scan.newer_than.as_ref().is_none_or(|n| *p > n))
                            .cloned()
                            .collect();
                        window.sort();
                        if scan.order == Order::NewestFirst {
                            window.reverse();
                        }
                        window.truncate(scan.limit);
                        let asked = probes(&request);
                        let found = ProbeAnswers {
                            at_or_older: asked
                                .at_or_older_than
                                .is_some_and(|at| list.iter().any(|p| *p <= at)),
                            at_or_newer: asked
                                .at_or_newer_than
                                .is_some_and(|at| list.iter().any(|p| *p >= at)),
                        };
                        let page = settle(&request, window, found);
                        let expected_next = page
                            .rows
                            .last()
                            .is_some_and(|last| list.iter().any(|p| p < last));
                        let expected_previous = page
                            .rows
                            .first()
                            .is_some_and(|first| list.iter().any(|p| p > first));
                        let context = format!("{request:?} gave {:?}", page.rows);
                        assert_eq!(page.has_next, expected_next, "has_next: {context}");
                        assert_eq!(
                            page.has_previous, expected_previous,
                            "has_previous: {context}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 13 * 13 * 2 * 7);
    }

    #[test]
    fn page_sizes_are_one_to_a_hundred() {
        assert!(PageSize::new(0).is_none());
        assert!(PageSize::new(101).is_none());
        assert_eq!(PageSize::new(100).unwrap().get(), 100);
    }
}
