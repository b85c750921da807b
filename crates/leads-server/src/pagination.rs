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

/// How a `page_info` flag is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagCheck {
    Known(bool),
    /// True when a lead matching the filters is older than this position.
    ExistsOlderThan(Position),
    /// True when a lead matching the filters is newer than this position.
    ExistsNewerThan(Position),
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

/// A page in list order and how to answer its two flags.
#[derive(Debug)]
pub struct Settled<T> {
    pub rows: Vec<T>,
    pub has_next: FlagCheck,
    pub has_previous: FlagCheck,
}

/// Turns the rows of [`plan`]'s scan into the page, and says which flags are already known.
///
/// The flags speak of the whole filtered list, not of the cursor window: `has_next_page` is
/// whether any matching lead is older than the page's last one, `has_previous_page` whether any
/// is newer than its first. An empty page has both false.
pub fn settle<T: Positioned>(request: &PageRequest, mut rows: Vec<T>) -> Settled<T> {
    let size = request.size.get();
    let saw_beyond = rows.len() > size;
    rows.truncate(size);
    if request.direction == Direction::Backward {
        rows.reverse();
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Settled {
            rows,
            has_next: FlagCheck::Known(false),
            has_previous: FlagCheck::Known(false),
        };
    };
    let older = FlagCheck::ExistsOlderThan(last.position());
    let newer = FlagCheck::ExistsNewerThan(first.position());
    // The far end of the scan is known from the extra row; when the scan ran out, the list may
    // still go on beyond a cursor bound. The near end starts at the list's own end when no cursor
    // bounds it there.
    let (has_next, has_previous) = match request.direction {
        Direction::Forward => (
            far_end(saw_beyond, request.before.is_some(), older),
            near_end(request.after.is_some(), newer),
        ),
        Direction::Backward => (
            near_end(request.before.is_some(), older),
            far_end(saw_beyond, request.after.is_some(), newer),
        ),
    };
    Settled {
        rows,
        has_next,
        has_previous,
    }
}

fn far_end(saw_beyond: bool, bounded: bool, check: FlagCheck) -> FlagCheck {
    match (saw_beyond, bounded) {
        (true, _) => FlagCheck::Known(true),
        (false, false) => FlagCheck::Known(false),
        (false, true) => check,
    }
}

fn near_end(bounded: bool, check: FlagCheck) -> FlagCheck {
    if bounded {
        check
    } else {
        FlagCheck::Known(false)
    }
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor this server issued")]
    Malformed,
    #[error("was altered or belongs to another company")]
    Forged,
}

const CURSOR_VERSION: u8 = 1;
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

    fn tag(&self, company: &CompanyId, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(company.as_str().as_bytes());
        mac.update(payload);
        mac
    }

    pub fn encode(&self, company: &CompanyId, position: &Position) -> String {
        let mut bytes = Vec::with_capacity(CURSOR_LEN);
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&position.created_at.to_be_bytes());
        bytes.extend_from_slice(&position.id.as_str().as_bytes()[LeadId::PREFIX.len()..]);
        let tag = self.tag(company, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(&self, company: &CompanyId, text: &str) -> Result<Position, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        if bytes.len() != CURSOR_LEN || bytes[0] != CURSOR_VERSION {
            return Err(CursorError::Malformed);
        }
        let (payload, tag) = bytes.split_at(CURSOR_LEN - TAG_LEN);
        self.tag(company, payload)
            .verify_truncated_left(tag)
            .map_err(|_| CursorError::Forged)?;
        let created_at = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        let suffix = std::str::from_utf8(&payload[9..]).map_err(|_| CursorError::Malformed)?;
        let id =
            LeadId::parse(&format!("{}{suffix}", LeadId::PREFIX)).ok_or(CursorError::Malformed)?;
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

    #[test]
    fn page_sizes_are_one_to_a_hundred() {
        assert!(PageSize::new(0).is_none());
        assert!(PageSize::new(101).is_none());
        assert_eq!(PageSize::new(100).unwrap().get(), 100);
    }
}
