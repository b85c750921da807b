//! The domain: identifiers and permissions, parsed once at the edge.

pub mod ids;
pub mod permissions;

pub use ids::{CompanyId, KeyId, LeadId, MemberId, ProductId, UserId};
pub use leads_types::Timestamp;
pub use permissions::{Permission, Permissions};
