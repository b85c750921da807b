//! The domain: identifiers, permissions and the content of leads, parsed once at the edge.

pub mod idempotency;
pub mod ids;
pub mod json_text;
pub mod lead;
pub mod metadata;
pub mod permissions;
pub mod search;
pub mod stats;
pub mod webhooks;

pub use idempotency::{IdempotencyClaim, IdempotencyKey};
pub use ids::{
    AppId, CompanyId, DeliveryId, ExportId, KeyId, LeadId, MemberId, ProductId, UserId,
    UserTokenId, WebhookId,
};
pub use lead::{LeadChange, NewLead, Referrer};
pub use leads_types::Timestamp;
pub use metadata::Metadata;
pub use permissions::{Permission, Permissions};
pub use search::{fold, EmailQuery, LeadSearch, MatchKind, SearchQuery};
