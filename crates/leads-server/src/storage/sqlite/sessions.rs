//! Dashboard sessions for SQLite: looked up on a reader, written (created, touched, ended) by
//! the writer.

use super::{sql_error, SqliteStore};
use crate::domain::CompanyId;
use crate::storage::sessions::{
    ChoosableCompany, Chooser, SecretKind, Session, SessionStore, IDLE_EXPIRY_MILLIS,
    TOUCH_EVERY_MILLIS,
};
use crate::storage::{StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: Session) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO dashboard_sessions (id_hash, credential_kind, credential_hash,
                     company_id, csrf_token, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    session.id_hash.as_slice(),
                    session.credential_kind.name(),
                    session.credential_hash.as_slice(),
                    session.company.as_ref().map(CompanyId::as_str),
                    session.csrf_token,
                    session.created_at,
                    session.last_seen_at
                ],
            )
            .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn touch_session(&self, id_hash: [u8; 32], now: i64) -> StoreResult<Option<Session>> {
        let Some(mut session) = self.on_reader(move |conn| find(conn, &id_hash)).await? else {
            return Ok(None);
        };
        if session.last_seen_at <= now - IDLE_EXPIRY_MILLIS {
            self.delete_session(id_hash).await?;
            return Ok(None);
        }
        if session.last_seen_at < now - TOUCH_EVERY_MILLIS {
            self.write(move |conn| {
                conn.execute(
                    "UPDATE dashboard_sessions SET last_seen_at = ?2
                     WHERE id_hash = ?1 AND last_seen_at < ?2",
                    params![id_hash.as_slice(), now],
                )
                .map_err(sql_error)
            })
            .await?;
            session.last_seen_at = now;
        }
        Ok(Some(session))
    }

    async fn choose_company(&self, id_hash: [u8; 32], company: CompanyId) -> StoreResult<bool> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE dashboard_sessions SET company_id = ?2 WHERE id_hash = ?1",
                params![id_hash.as_slice(), company.as_str()],
            )
            .map(|n| n > 0)
            .map_err(sql_error)
        })
        .await
    }

    async fn delete_session(&self, id_hash: [u8; 32]) -> StoreResult<bool> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM dashboard_sessions WHERE id_hash = ?1",
                params![id_hash.as_slice()],
            )
            .map(|n| n > 0)
            .map_err(sql_error)
        })
        .await
    }

    async fn delete_credential_sessions(&self, credential_hash: [u8; 32]) -> StoreResult<u64> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM dashboard_sessions WHERE credential_hash = ?1",
                params![credential_hash.as_slice()],
            )
            .map(|n| n as u64)
            .map_err(sql_error)
        })
        .await
    }

    async fn forget_idle_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM dashboard_sessions WHERE id_hash IN (
                     SELECT id_hash FROM dashboard_sessions WHERE last_seen_at < ?1 LIMIT ?2)",
                params![before, limit],
            )
            .map(|n| n as u64)
            .map_err(sql_error)
        })
        .await
    }

    async fn choosable_companies(&self, chooser: Chooser) -> StoreResult<Vec<ChoosableCompany>> {
        self.on_reader(move |conn| {
            let (sql, owner) = match &chooser {
                Chooser::App(app) => (
                    "SELECT c.id, c.title FROM app_installs i JOIN companies c ON c.id = i.company_id
                     WHERE i.app_id = ?1 ORDER BY c.title, c.id",
                    app.as_str(),
                ),
                Chooser::User(user) => (
                    "SELECT c.id, c.title FROM team_members t JOIN companies c ON c.id = t.company_id
                     WHERE t.user_id = ?1 ORDER BY c.title, c.id",
                    user.as_str(),
                ),
            };
            let mut statement = conn.prepare_cached(sql).map_err(sql_error)?;
            let rows = statement
                .query_map(params![owner], |row| {
                    Ok(ChoosableCompany {
                        id: CompanyId::from_trusted(row.get::<_, String>(0)?),
                        title: row.get(1)?,
                    })
                })
                .map_err(sql_error)?;
            rows.collect::<Result<_, _>>().map_err(sql_error)
        })
        .await
    }
}

fn find(conn: &Connection, id_hash: &[u8; 32]) -> StoreResult<Option<Session>> {
    let row = conn
        .prepare_cached(
            "SELECT credential_kind, credential_hash, company_id, csrf_token, created_at,
                    last_seen_at
             FROM dashboard_sessions WHERE id_hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![id_hash.as_slice()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, [u8; 32]>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })
            .optional()
        })
        .map_err(sql_error)?;
    row.map(
        |(kind, credential_hash, company, csrf_token, created_at, last_seen_at)| {
            Ok(Session {
                id_hash: *id_hash,
                credential_kind: SecretKind::parse(&kind).ok_or_else(|| {
                    StoreError::Internal(format!(
                        "a session has an unknown credential kind {kind:?}"
                    ))
                })?,
                credential_hash,
                company: company.map(CompanyId::from_trusted),
                csrf_token,
                created_at,
                last_seen_at,
            })
        },
    )
    .transpose()
}
