//! Dashboard sessions for PostgreSQL: each call one statement (two for an expired or stale
//! session), so every instance sees a sign-out or a revoked key's sessions gone at once.

use super::sql::Sql;
use super::{execute, pg_error, query_opt, PgStore};
use crate::domain::CompanyId;
use crate::storage::sessions::{
    ChoosableCompany, Chooser, SecretKind, Session, SessionStore, IDLE_EXPIRY_MILLIS,
    TOUCH_EVERY_MILLIS,
};
use crate::storage::{StoreError, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, session: Session) -> StoreResult<()> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO dashboard_sessions (id_hash, credential_kind, credential_hash,
                 company_id, csrf_token, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &session.id_hash.as_slice(),
                &session.credential_kind.name(),
                &session.credential_hash.as_slice(),
                &session.company.as_ref().map(CompanyId::as_str),
                &session.csrf_token,
                &session.created_at,
                &session.last_seen_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn touch_session(&self, id_hash: [u8; 32], now: i64) -> StoreResult<Option<Session>> {
        let client = self.client().await?;
        let Some(row) = query_opt(
            &client,
            "SELECT credential_kind, credential_hash, company_id, csrf_token, created_at,
                    last_seen_at
             FROM dashboard_sessions WHERE id_hash = $1",
            &[&id_hash.as_slice()],
        )
        .await?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get(0).map_err(pg_error)?;
        let credential_hash: Vec<u8> = row.try_get(1).map_err(pg_error)?;
        let mut session = Session {
            id_hash,
            credential_kind: SecretKind::parse(&kind).ok_or_else(|| {
                StoreError::Internal(format!("a session has an unknown credential kind {kind:?}"))
            })?,
            credential_hash: credential_hash.try_into().map_err(|_| {
                StoreError::Internal("a session's credential hash is not 32 bytes".into())
            })?,
            company: row
                .try_get::<_, Option<String>>(2)
                .map_err(pg_error)?
                .map(CompanyId::from_trusted),
            csrf_token: row.try_get(3).map_err(pg_error)?,
            created_at: row.try_get(4).map_err(pg_error)?,
            last_seen_at: row.try_get(5).map_err(pg_error)?,
        };
        if session.last_seen_at <= now - IDLE_EXPIRY_MILLIS {
            execute(
                &client,
                "DELETE FROM dashboard_sessions WHERE id_hash = $1",
                &[&id_hash.as_slice()],
            )
            .await?;
            return Ok(None);
        }
        if session.last_seen_at < now - TOUCH_EVERY_MILLIS {
            execute(
                &client,
                "UPDATE dashboard_sessions SET last_seen_at = $2
                 WHERE id_hash = $1 AND last_seen_at < $2",
                &[&id_hash.as_slice(), &now],
            )
            .await?;
            session.last_seen_at = now;
        }
        Ok(Some(session))
    }

    async fn choose_company(&self, id_hash: [u8; 32], company: CompanyId) -> StoreResult<bool> {
        let client = self.client().await?;
        let written = execute(
            &client,
            "UPDATE dashboard_sessions SET company_id = $2 WHERE id_hash = $1",
            &[&id_hash.as_slice(), &company.as_str()],
        )
        .await?;
        Ok(written > 0)
    }

    async fn delete_session(&self, id_hash: [u8; 32]) -> StoreResult<bool> {
        let client = self.client().await?;
        let deleted = execute(
            &client,
            "DELETE FROM dashboard_sessions WHERE id_hash = $1",
            &[&id_hash.as_slice()],
        )
        .await?;
        Ok(deleted > 0)
    }

    async fn delete_credential_sessions(&self, credential_hash: [u8; 32]) -> StoreResult<u64> {
        let client = self.client().await?;
        execute(
            &client,
            "DELETE FROM dashboard_sessions WHERE credential_hash = $1",
            &[&credential_hash.as_slice()],
        )
        .await
    }

    async fn forget_idle_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let client = self.client().await?;
        execute(
            &client,
            "DELETE FROM dashboard_sessions WHERE id_hash IN (
                 SELECT id_hash FROM dashboard_sessions WHERE last_seen_at < $1 LIMIT $2)",
            &[&before, &i64::from(limit)],
        )
        .await
    }

    async fn choosable_companies(&self, chooser: Chooser) -> StoreResult<Vec<ChoosableCompany>> {
        let client = self.client().await?;
        let (sql, owner) = match &chooser {
            Chooser::App(app) => (
                "SELECT c.id, c.title FROM app_installs i JOIN companies c ON c.id = i.company_id
                 WHERE i.app_id = $1 ORDER BY c.title, c.id",
                app.as_str(),
            ),
            Chooser::User(user) => (
                "SELECT c.id, c.title FROM team_members t JOIN companies c ON c.id = t.company_id
                 WHERE t.user_id = $1 ORDER BY c.title, c.id",
                user.as_str(),
            ),
        };
        let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
        let rows = client
            .query(&statement, &[&owner])
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                Ok(ChoosableCompany {
                    id: CompanyId::from_trusted(row.try_get(0).map_err(pg_error)?),
                    title: row.try_get(1).map_err(pg_error)?,
                })
            })
            .collect()
    }
}
