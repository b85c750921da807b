//! `leads webhooks ...`: a company's webhook endpoints over the API, through `leads-client`,
//! printed as the API's JSON.

use crate::cli::Failure;
use crate::remote::ConnectionArgs;
use clap::{ArgGroup, Args, Subcommand};
use leads_types::webhooks::{CreateWebhook, ReplayWebhook, UpdateWebhook};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Create an endpoint; prints it with its signing secret, shown this once.
    Create {
        /// Where to POST events (http or https).
        #[arg(long)]
        url: String,
        /// An event to send (lead.created, lead.updated, lead.converted, lead.deleted, ...);
        /// repeat for several. Every event when left out.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        /// The company (biz_...); the key's own when left out.
        #[arg(long)]
        company: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// List a company's endpoints, newest first.
    List {
        /// The company (biz_...).
        #[arg(long)]
        company: String,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Show one endpoint.
    Get {
        /// The endpoint's id (hook_...).
        id: String,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Change an endpoint's URL, events, or whether it is enabled.
    #[command(group(ArgGroup::new("state").args(["enable", "disable"])))]
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// The events to send from now on; repeat for several.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        /// Enable it (clearing a failure streak that disabled it).
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Delete an endpoint, its queued messages and its delivery log.
    Delete {
        id: String,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// An endpoint's delivery attempts, newest first.
    Deliveries {
        id: String,
        /// Print at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Send one delivery again now (--delivery), or queue again the messages of a window
    /// (--since).
    #[command(group(ArgGroup::new("what").args(["delivery", "since"]).required(true)))]
    Replay {
        id: String,
        /// The attempt to send again (whdel_...); prints what the receiver answered.
        #[arg(long)]
        delivery: Option<String>,
        /// Start of the window of attempts (RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// End of the window (RFC 3339); now when left out.
        #[arg(long, value_name = "TIME", requires = "since")]
        until: Option<String>,
        /// Only messages whose latest attempt in the window failed.
        #[arg(long, requires = "since")]
        failed_only: bool,
        /// Only these events; repeat for several.
        #[arg(long = "event", value_name = "EVENT", requires = "since")]
        events: Vec<String>,
        /// Send under a new webhook-id.
        #[arg(long)]
        regenerate_id: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Send a sample event now; prints what the receiver answered.
    Test {
        id: String,
        /// The event whose sample to send.
        #[arg(long, default_value = "lead.created")]
        event: String,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
}

fn some(events: Vec<String>) -> Option<Vec<String>> {
    (!events.is_empty()).then_some(events)
}

fn print(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
    Ok(())
}

pub async fn run(args: WebhooksArgs) -> Result<(), Failure> {
    match args.command {
        WebhooksCommand::Create {
            url,
            events,
            company,
            disabled,
            connection,
        } => {
            let params = CreateWebhook {
                url: Some(url),
                events: some(events),
                enabled: Some(!disabled),
                resource_id: company,
                ..CreateWebhook::default()
            };
            print(&connection.client()?.webhooks().create(&params).await?)
        }
        WebhooksCommand::List {
            company,
            connection,
        } => {
            let webhooks = connection.client()?.webhooks();
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = webhooks.list(&company, after.as_deref()).await?;
                all.extend(page.data);
                match page.page_info.end_cursor {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            print(&all)
        }
        WebhooksCommand::Get { id, connection } => {
            print(&connection.client()?.webhooks().retrieve(&id).await?)
        }
        WebhooksCommand::Update {
            id,
            url,
            events,
            enable,
            disable,
            connection,
        } => {
            let params = UpdateWebhook {
                url,
                events: some(events),
                enabled: (enable || disable).then_some(enable),
                ..UpdateWebhook::default()
            };
            print(&connection.client()?.webhooks().update(&id, &params).await?)
        }
        WebhooksCommand::Delete { id, connection } => {
            print(&connection.client()?.webhooks().delete(&id).await?)
        }
        WebhooksCommand::Deliveries {
            id,
            limit,
            connection,
        } => {
            let webhooks = connection.client()?.webhooks();
            let mut all = Vec::new();
            let mut after = None;
            while all.len() < limit {
                let page = webhooks.deliveries(&id, after.as_deref()).await?;
                all.extend(page.data);
                match page.page_info.end_cursor {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            all.truncate(limit);
            print(&all)
        }
        WebhooksCommand::Replay {
            id,
            delivery,
            since,
            until,
            failed_only,
            events,
            regenerate_id,
            connection,
        } => {
            let webhooks = connection.client()?.webhooks();
            match delivery {
                Some(delivery) => print(
                    &webhooks
                        .replay_delivery(&id, &delivery, regenerate_id)
                        .await?,
                ),
                None => {
                    let params = ReplayWebhook {
                        sent_after: since,
                        sent_before: until,
                        events: some(events),
                        failed_only: Some(failed_only),
                        regenerate_ids: Some(regenerate_id),
                    };
                    print(&webhooks.replay(&id, &params).await?)
                }
            }
        }
        WebhooksCommand::Test {
            id,
            event,
            connection,
        } => print(&connection.client()?.webhooks().test(&id, &event).await?),
    }
}
