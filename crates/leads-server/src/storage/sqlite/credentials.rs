//! Credentials for SQLite: company and app keys, app installations, user tokens, teams, key
//! listing and revocation.

use super::{company_exists, is_unique_violation, sql_error, ts, SqliteStore};
use crate::domain::{AppId, CompanyId, KeyId, Permissions, Timestamp, UserId, UserTokenId};
use crate::storage::{
    ApiKey, App, AppInstall, AppKey, CredentialStore, KeyListing, KeyOwner, StoreError,
    StoreResult, TeamMember, UserToken,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn find_api_key(&self, hash: [u8; 32]) -> StoreResult<Option<ApiKey>> {
        self.on_reader(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, company_id, permissions, created_at, revoked_at, secret_hash
                     FROM api_keys WHERE secret_hash = ?1",
                )
                .and_then(|mut st| {
                    st.query_row(params![hash.as_slice()], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, Option<i64>>(4)?,
                            row.get::<_, [u8; 32]>(5)?,
                        ))
                    })
                    .optional()
                })
                .map_err(sql_error)?;
            row.map(
                |(id, company, permissions, created_at, revoked_at, secret_hash)| {
                    Ok(ApiKey {
                        id: KeyId::from_trusted(id),
                        company_id: CompanyId::from_trusted(company),
                        permissions: self::permissions(&permissions)?,
                        created_at: ts(created_at),
                        revoked: revoked_at.is_some(),
                        secret_hash,
                    })
                },
            )
            .transpose()
        })
        .await
    }

    async fn find_app_key(&self, hash: [u8; 32]) -> StoreResult<Option<AppKey>> {
        self.read(move |conn| find_app_key(conn, &hash)).await
    }

    async fn find_user_token(&self, hash: [u8; 32]) -> StoreResult<Option<UserToken>> {
        self.read(move |conn| find_user_token(conn, &hash)).await
    }

    async fn app_installation(
        &self,
        app: AppId,
        company: CompanyId,
    ) -> StoreResult<Option<Permissions>> {
        self.read(move |conn| app_installation(conn, &app, &company))
            .await
    }

    async fn is_on_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool> {
        self.read(move |conn| is_on_team(conn, &company, &user))
            .await
    }

    async fn api_key_is_valid(&self, id: KeyId) -> StoreResult<bool> {
        self.on_reader(move |conn| super::leads::key_is_valid(conn, &id))
            .await
    }

    async fn create_api_key(
        &self,
        company: CompanyId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey> {
        self.write(move |conn| {
            company_exists(conn, &company)?;
            let key = ApiKey {
                id: KeyId::generate(),
                company_id: company,
                permissions,
                created_at: Timestamp::now(),
                revoked: false,
                secret_hash,
            };
            conn.execute(
                "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key.id.as_str(),
                    key.company_id.as_str(),
                    key.secret_hash.as_slice(),
                    key.permissions.to_string(),
                    key.created_at.as_millis()
                ],
            )
            .map_err(sql_error)?;
            Ok(key)
        })
        .await
    }

    async fn create_app(&self, title: String) -> StoreResult<App> {
        self.write(move |conn| create_app(conn, title)).await
    }

    async fn install_app(
        &self,
        app: AppId,
        company: CompanyId,
        permissions: Permissions,
    ) -> StoreResult<AppInstall> {
        self.write(move |conn| install_app(conn, &app, &company, permissions))
            .await
    }

    async fn uninstall_app(&self, app: AppId, company: CompanyId) -> StoreResult<bool> {
        self.write(move |conn| uninstall_app(conn, &app, &company))
            .await
    }

    async fn create_app_key(
        &self,
        app: AppId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<AppKey> {
        self.write(move |conn| create_app_key(conn, app, permissions, secret_hash))
            .await
    }

    async fn list_keys(&self, owner: KeyOwner) -> StoreResult<Vec<KeyListing>> {
        self.read(move |conn| list_keys(conn, &owner)).await
    }

    async fn revoke_key(&self, id: KeyId) -> StoreResult<bool> {
        self.write(move |conn| revoke_key(conn, &id)).await
    }

    async fn create_user_token(
        &self,
        user: UserId,
        scopes: Permissions,
        expires_at: i64,
        secret_hash: [u8; 32],
    ) -> StoreResult<UserToken> {
        self.write(move |conn| create_user_token(conn, user, scopes, expires_at, secret_hash))
            .await
    }

    async fn revoke_user_token(&self, id: UserTokenId) -> StoreResult<bool> {
        self.write(move |conn| revoke_user_token(conn, &id)).await
    }

    async fn add_to_team(&self, company: CompanyId, user: UserId) -> StoreResult<TeamMember> {
        self.write(move |conn| add_to_team(conn, company, user))
            .await
    }

    async fn remove_from_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool> {
        self.write(move |conn| remove_from_team(conn, &company, &user))
            .await
    }
}

/// Permissions as stored: a list this server wrote, so an unknown name means a broken database.
pub(super) fn permissions(text: &str) -> StoreResult<Permissions> {
    Permissions::parse_list(text)
        .map_err(|name| StoreError::Internal(format!("stored permission {name:?} is unknown")))
}

fn app_exists(conn: &Connection, app: &AppId) -> StoreResult<()> {
    conn.prepare_cached("SELECT 1 FROM apps WHERE id = ?1")
        .and_then(|mut st| st.exists(params![app.as_str()]))
        .map_err(sql_error)?
        .then_some(())
        .ok_or_else(|| StoreError::NotFound(format!("no app {app}")))
}

fn user_exists(conn: &Connection, user: &UserId) -> StoreResult<()> {
    conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1")
        .and_then(|mut st| st.exists(params![user.as_str()]))
        .map_err(sql_error)?
        .then_some(())
        .ok_or_else(|| StoreError::NotFound(format!("no user {user}")))
}

pub(super) fn find_app_key(conn: &Connection, hash: &[u8; 32]) -> StoreResult<Option<AppKey>> {
    let row = conn
        .prepare_cached(
            "SELECT id, app_id, permissions, created_at, revoked_at, secret_hash
             FROM app_keys WHERE secret_hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![hash.as_slice()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, [u8; 32]>(5)?,
                ))
            })
            .optional()
        })
        .map_err(sql_error)?;
    row.map(|(id, app, perms, created_at, revoked_at, secret_hash)| {
        Ok(AppKey {
            id: KeyId::from_trusted(id),
            app_id: AppId::from_trusted(app),
            permissions: permissions(&perms)?,
            created_at: ts(created_at),
            revoked: revoked_at.is_some(),
            secret_hash,
        })
    })
    .transpose()
}

pub(super) fn find_user_token(
    conn: &Connection,
    hash: &[u8; 32],
) -> StoreResult<Option<UserToken>> {
    let row = conn
        .prepare_cached(
            "SELECT id, user_id, scopes, created_at, expires_at, revoked_at, secret_hash
             FROM user_tokens WHERE secret_hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![hash.as_slice()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, [u8; 32]>(6)?,
                ))
            })
            .optional()
        })
        .map_err(sql_error)?;
    row.map(
        |(id, user, scopes, created_at, expires_at, revoked_at, secret_hash)| {
            Ok(UserToken {
                id: UserTokenId::from_trusted(id),
                user_id: UserId::from_trusted(user),
                scopes: permissions(&scopes)?,
                created_at: ts(created_at),
                expires_at,
                revoked: revoked_at.is_some(),
                secret_hash,
            })
        },
    )
    .transpose()
}

pub(super) fn app_installation(
    conn: &Connection,
    app: &AppId,
    company: &CompanyId,
) -> StoreResult<Option<Permissions>> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT permissions FROM app_installs WHERE app_id = ?1 AND company_id = ?2",
        )
        .and_then(|mut st| {
            st.query_row(params![app.as_str(), company.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(sql_error)?;
    text.as_deref().map(permissions).transpose()
}

pub(super) fn is_on_team(
    conn: &Connection,
    company: &CompanyId,
    user: &UserId,
) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM team_members WHERE company_id = ?1 AND user_id = ?2")
        .and_then(|mut st| st.exists(params![company.as_str(), user.as_str()]))
        .map_err(sql_error)
}

pub(super) fn create_app(conn: &Connection, title: String) -> StoreResult<App> {
    let app = App {
        id: AppId::generate().into_string(),
        title,
        created_at: Timestamp::now(),
    };
    conn.execute(
        "INSERT INTO apps (id, title, created_at) VALUES (?1, ?2, ?3)",
        params![app.id, app.title, app.created_at.as_millis()],
    )
    .map_err(sql_error)?;
    Ok(app)
}

pub(super) fn install_app(
    conn: &Connection,
    app: &AppId,
    company: &CompanyId,
    permissions: Permissions,
) -> StoreResult<AppInstall> {
    app_exists(conn, app)?;
    company_exists(conn, company)?;
    let now = Timestamp::now();
    // Installing again changes the permissions and keeps the first installation's time.
    let created_at: i64 = conn
        .query_row(
            "INSERT INTO app_installs (app_id, company_id, permissions, created_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (app_id, company_id) DO UPDATE SET permissions = excluded.permissions
             RETURNING created_at",
            params![
                app.as_str(),
                company.as_str(),
                permissions.to_string(),
                now.as_millis()
            ],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    Ok(AppInstall {
        app_id: app.as_str().to_owned(),
        company_id: company.as_str().to_owned(),
        permissions,
        created_at: ts(created_at),
    })
}

pub(super) fn uninstall_app(
    conn: &Connection,
    app: &AppId,
    company: &CompanyId,
) -> StoreResult<bool> {
    conn.execute(
        "DELETE FROM app_installs WHERE app_id = ?1 AND company_id = ?2",
        params![app.as_str(), company.as_str()],
    )
    .map(|n| n > 0)
    .map_err(sql_error)
}

pub(super) fn create_app_key(
    conn: &Connection,
    app: AppId,
    permissions: Permissions,
    secret_hash: [u8; 32],
) -> StoreResult<AppKey> {
    app_exists(conn, &app)?;
    let key = AppKey {
        id: KeyId::generate(),
        app_id: app,
        permissions,
        created_at: Timestamp::now(),
        revoked: false,
        secret_hash,
    };
    conn.execute(
        "INSERT INTO app_keys (id, app_id, secret_hash, permissions, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.id.as_str(),
            key.app_id.as_str(),
            key.secret_hash.as_slice(),
            key.permissions.to_string(),
            key.created_at.as_millis()
        ],
    )
    .map_err(sql_error)?;
    Ok(key)
}

pub(super) fn list_keys(conn: &Connection, owner: &KeyOwner) -> StoreResult<Vec<KeyListing>> {
    let (sql, id) = match owner {
        KeyOwner::Company(company) => {
            company_exists(conn, company)?;
            (
                "SELECT id, permissions, created_at, revoked_at FROM api_keys
                 WHERE company_id = ?1 ORDER BY created_at, id",
                company.as_str(),
            )
        }
        KeyOwner::App(app) => {
            app_exists(conn, app)?;
            (
                "SELECT id, permissions, created_at, revoked_at FROM app_keys
                 WHERE app_id = ?1 ORDER BY created_at, id",
                app.as_str(),
            )
        }
    };
    let mut statement = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = statement
        .query_map(params![id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    rows.into_iter()
        .map(|(key, perms, created_at, revoked_at)| {
            Ok(KeyListing {
                id: key,
                company_id: matches!(owner, KeyOwner::Company(_)).then(|| id.to_owned()),
                app_id: matches!(owner, KeyOwner::App(_)).then(|| id.to_owned()),
                permissions: permissions(&perms)?,
                created_at: ts(created_at),
                revoked_at: revoked_at.map(ts),
            })
        })
        .collect()
}

/// Sets `revoked_at` on the row `id` of `table` unless it is set; whether the row exists.
fn revoke(conn: &Connection, table: &str, id: &str) -> StoreResult<bool> {
    conn.execute(
        &format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1"),
        params![id, Timestamp::now().as_millis()],
    )
    .map(|n| n > 0)
    .map_err(sql_error)
}

pub(super) fn revoke_key(conn: &Connection, id: &KeyId) -> StoreResult<bool> {
    Ok(revoke(conn, "api_keys", id.as_str())? | revoke(conn, "app_keys", id.as_str())?)
}

pub(super) fn create_user_token(
    conn: &Connection,
    user: UserId,
    scopes: Permissions,
    expires_at: i64,
    secret_hash: [u8; 32],
) -> StoreResult<UserToken> {
    user_exists(conn, &user)?;
    let token = UserToken {
        id: UserTokenId::generate(),
        user_id: user,
        scopes,
        created_at: Timestamp::now(),
        expires_at,
        revoked: false,
        secret_hash,
    };
    conn.execute(
        "INSERT INTO user_tokens (id, user_id, secret_hash, scopes, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            token.id.as_str(),
            token.user_id.as_str(),
            token.secret_hash.as_slice(),
            token.scopes.to_string(),
            token.created_at.as_millis(),
            token.expires_at
        ],
    )
    .map_err(sql_error)?;
    Ok(token)
}

pub(super) fn revoke_user_token(conn: &Connection, id: &UserTokenId) -> StoreResult<bool> {
    revoke(conn, "user_tokens", id.as_str())
}

pub(super) fn add_to_team(
    conn: &Connection,
    company: CompanyId,
    user: UserId,
) -> StoreResult<TeamMember> {
    company_exists(conn, &company)?;
    user_exists(conn, &user)?;
    let member = TeamMember {
        company_id: company.into_string(),
        user_id: user.into_string(),
        created_at: Timestamp::now(),
    };
    conn.execute(
        "INSERT INTO team_members (company_id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![
            member.company_id,
            member.user_id,
            member.created_at.as_millis()
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "user {} is already on the team of company {}",
                member.user_id, member.company_id
            ))
        } else {
            sql_error(e)
        }
    })?;
    Ok(member)
}

pub(super) fn remove_from_team(
    conn: &Connection,
    company: &CompanyId,
    user: &UserId,
) -> StoreResult<bool> {
    conn.execute(
        "DELETE FROM team_members WHERE company_id = ?1 AND user_id = ?2",
        params![company.as_str(), user.as_str()],
    )
    .map(|n| n > 0)
    .map_err(sql_error)
}
