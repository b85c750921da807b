//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types.
//!
//! Routes are registered through `utoipa_axum`'s router together with their documentation, so a
//! route cannot exist without its entry in the document, nor the reverse.

use leads_types::{ErrorBody, ErrorDetail, Lead, LeadMember, LeadProduct, LeadUser, PageInfo};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "leads",
        description = "A self-hostable, Whop-compatible API for a company's leads. The human-readable reference, with every rule and every extension beyond Whop's API marked as one, is `docs/api.md` in the project's repository.",
        license(name = "MIT")
    ),
    components(schemas(Lead, LeadUser, LeadProduct, LeadMember, PageInfo, ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "leads", description = "Prospective customers of a company's products"),
        (name = "stats", description = "Lead metrics over time: new leads, conversions, conversion rate"),
        (name = "webhooks", description = "Endpoints a company's lead events are POSTed to, signed as Standard Webhooks specifies; their delivery log, replays and tests"),
        (name = "exports", description = "Asynchronous exports of a company's leads to a CSV file, and their download links")
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme every `/api/v1` route uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "A company API key (leads_ck_...), an app API key (leads_ak_...), a company-scoped \
             JWT (ES256 or EdDSA), or a user OAuth token (leads_ut_...). A user token acts for \
             the companies whose team its user is on; elsewhere it may only record its own \
             user as a lead (POST /leads), and is refused a company's list (403) and its \
             leads (404) like any other credential of another company."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
