//! Credentials for PostgreSQL: company and app keys, app installations, user tokens, teams, key
//! listing and revocation. Each is one statement, its own transaction; the lookups run on every request, so
//! every instance sees a revocation, an expiry or an uninstall at once.

use super::sql::{PgClient as Client, Sql};
use super::{execute, insert_for_company, pg_error, query_opt, ts, PgStore};
use crate::domain::{AppId, CompanyId, KeyId, Permissions, Timestamp, UserId, UserTokenId};
use crate::storage::{
    ApiKey, App, AppInstall, AppKey, CredentialStore, KeyListing, KeyOwner, StoreError,
    StoreResult, TeamMember, UserToken,
};
use async_trait::async_trait;
use tokio_postgres::Row;

#[async_trait]
impl CredentialStore for PgStore {
    async fn find_api_key(&self, hash: [u8; 32]) -> StoreResult<Option<ApiKey>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, company_id, permissions, created_at, revoked_at, secret_hash
                 FROM api_keys WHERE secret_hash = $1",
            )
            .await
            .map_err(pg_error)?;
        let Some(row) = client
            .query_opt(&statement, &[&hash.as_slice()])
            .await
            .map_err(pg_error)?
        else {
            return Ok(None);
        };
        let permissions: String = row.try_get(2).map_err(pg_error)?;
        let revoked_at: Option<i64> = row.try_get(4).map_err(pg_error)?;
        let secret_hash: Vec<u8> = row.try_get(5).map_err(pg_error)?;
        Ok(Some(ApiKey {
            id: KeyId::from_trusted(row.try_get(0).map_err(pg_error)?),
            company_id: CompanyId::from_trusted(row.try_get(1).map_err(pg_error)?),
            permissions: self::permissions(&permissions)?,
            created_at: ts(row.try_get(3).map_err(pg_error)?),
            revoked: revoked_at.is_some(),
            secret_hash: secret_hash
                .try_into()
                .map_err(|_| StoreError::Internal("a stored key hash is not 32 bytes".into()))?,
        }))
    }

    async fn find_app_key(&self, hash: [u8; 32]) -> StoreResult<Option<AppKey>> {
        find_app_key(&self.client().await?, &hash).await
    }

    async fn find_user_token(&self, hash: [u8; 32]) -> StoreResult<Option<UserToken>> {
        find_user_token(&self.client().await?, &hash).await
    }

    async fn app_installation(
        &self,
        app: AppId,
        company: CompanyId,
    ) -> StoreResult<Option<Permissions>> {
        app_installation(&self.client().await?, &app, &company).await
    }

    async fn is_on_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool> {
        is_on_team(&self.client().await?, &company, &user).await
    }

    async fn api_key_is_valid(&self, id: KeyId) -> StoreResult<bool> {
        super::leads::key_is_valid(&self.client().await?, &id).await
    }

    async fn create_api_key(
        &self,
        company: CompanyId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey> {
        let key = ApiKey {
            id: KeyId::generate(),
            company_id: company,
            permissions,
            created_at: Timestamp::now(),
            revoked: false,
            secret_hash,
        };
        let written = &key;
        self.retrying(|client| async move {
            insert_for_company(
                &client,
                &written.company_id,
                "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
                 SELECT $1, id, $3, $4, $5 FROM companies WHERE id = $2",
                &[
                    &written.id.as_str(),
                    &written.company_id.as_str(),
                    &written.secret_hash.as_slice(),
                    &written.permissions.to_string(),
                    &written.created_at.as_millis(),
                ],
            )
            .await
        })
        .await?;
        Ok(key)
    }

    async fn create_app(&self, title: String) -> StoreResult<App> {
        create_app(&self.client().await?, title).await
    }

    async fn install_app(
        &self,
        app: AppId,
        company: CompanyId,
        permissions: Permissions,
    ) -> StoreResult<AppInstall> {
        let (app, company, permissions) = (&app, &company, &permissions);
        self.retrying(
            |client| async move { install_app(&client, app, company, *permissions).await },
        )
        .await
    }

    async fn uninstall_app(&self, app: AppId, company: CompanyId) -> StoreResult<bool> {
        let (app, company) = (&app, &company);
        self.retrying(|client| async move { uninstall_app(&client, app, company).await })
            .await
    }

    async fn create_app_key(
        &self,
        app: AppId,
        permissions: Permissions,
        secret_hash: [u8; 32],
    ) -> StoreResult<AppKey> {
        let (app, permissions) = (&app, &permissions);
        self.retrying(|client| async move {
            create_app_key(&client, app.clone(), *permissions, secret_hash).await
        })
        .await
    }

    async fn list_keys(&self, owner: KeyOwner) -> StoreResult<Vec<KeyListing>> {
        list_keys(&self.client().await?, &owner).await
    }

    async fn revoke_key(&self, id: KeyId) -> StoreResult<bool> {
        let id = &id;
        self.retrying(|client| async move { revoke_key(&client, id).await })
            .await
    }

    async fn create_user_token(
        &self,
        user: UserId,
        scopes: Permissions,
        expires_at: i64,
        secret_hash: [u8; 32],
    ) -> StoreResult<UserToken> {
        let (user, scopes) = (&user, &scopes);
        self.retrying(|client| async move {
            create_user_token(&client, user.clone(), *scopes, expires_at, secret_hash).await
        })
        .await
    }

    async fn revoke_user_token(&self, id: UserTokenId) -> StoreResult<bool> {
        let id = &id;
        self.retrying(|client| async move { revoke_user_token(&client, id).await })
            .await
    }

    async fn add_to_team(&self, company: CompanyId, user: UserId) -> StoreResult<TeamMember> {
        let (company, user) = (&company, &user);
        self.retrying(
            |client| async move { add_to_team(&client, company.clone(), user.clone()).await },
        )
        .await
    }

    async fn remove_from_team(&self, company: CompanyId, user: UserId) -> StoreResult<bool> {
        let (company, user) = (&company, &user);
        self.retrying(|client| async move { remove_from_team(&client, company, user).await })
            .await
    }
}

/// Permissions as stored: a list this server wrote, so an unknown name means a broken database.
pub(super) fn permissions(text: &str) -> StoreResult<Permissions> {
    Permissions::parse_list(text)
        .map_err(|name| StoreError::Internal(format!("stored permission {name:?} is unknown")))
}

fn hash(row: &Row, index: usize) -> StoreResult<[u8; 32]> {
    let bytes: Vec<u8> = row.try_get(index).map_err(pg_error)?;
    bytes
        .try_into()
        .map_err(|_| StoreError::Internal("a stored secret hash is not 32 bytes".into()))
}

async fn exists(client: &Client, sql: &str, id: &str) -> StoreResult<bool> {
    Ok(query_opt(client, sql, &[&id]).await?.is_some())
}

async fn app_exists(client: &Client, app: &AppId) -> StoreResult<()> {
    if exists(client, "SELECT 1 FROM apps WHERE id = $1", app.as_str()).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("no app {app}")))
    }
}

pub(super) async fn find_app_key(
    client: &Client,
    secret_hash: &[u8; 32],
) -> StoreResult<Option<AppKey>> {
    let Some(row) = query_opt(
        client,
        "SELECT id, app_id, permissions, created_at, revoked_at, secret_hash
         FROM app_keys WHERE secret_hash = $1",
        &[&secret_hash.as_slice()],
    )
    .await?
    else {
        return Ok(None);
    };
    let text: String = row.try_get(2).map_err(pg_error)?;
    let revoked_at: Option<i64> = row.try_get(4).map_err(pg_error)?;
    Ok(Some(AppKey {
        id: KeyId::from_trusted(row.try_get(0).map_err(pg_error)?),
        app_id: AppId::from_trusted(row.try_get(1).map_err(pg_error)?),
        permissions: permissions(&text)?,
        created_at: ts(row.try_get(3).map_err(pg_error)?),
        revoked: revoked_at.is_some(),
        secret_hash: hash(&row, 5)?,
    }))
}

pub(super) async fn find_user_token(
    client: &Client,
    secret_hash: &[u8; 32],
) -> StoreResult<Option<UserToken>> {
    let Some(row) = query_opt(
        client,
        "SELECT id, user_id, scopes, created_at, expires_at, revoked_at, secret_hash
         FROM user_tokens WHERE secret_hash = $1",
        &[&secret_hash.as_slice()],
    )
    .await?
    else {
        return Ok(None);
    };
    let scopes: String = row.try_get(2).map_err(pg_error)?;
    let revoked_at: Option<i64> = row.try_get(5).map_err(pg_error)?;
    Ok(Some(UserToken {
        id: UserTokenId::from_trusted(row.try_get(0).map_err(pg_error)?),
        user_id: UserId::from_trusted(row.try_get(1).map_err(pg_error)?),
        scopes: permissions(&scopes)?,
        created_at: ts(row.try_get(3).map_err(pg_error)?),
        expires_at: row.try_get(4).map_err(pg_error)?,
        revoked: revoked_at.is_some(),
        secret_hash: hash(&row, 6)?,
    }))
}

pub(super) async fn app_installation(
    client: &Client,
    app: &AppId,
    company: &CompanyId,
) -> StoreResult<Option<Permissions>> {
    let row = query_opt(
        client,
        "SELECT permissions FROM app_installs WHERE app_id = $1 AND company_id = $2",
        &[&app.as_str(), &company.as_str()],
    )
    .await?;
    match row {
        Some(row) => {
            let text: String = row.try_get(0).map_err(pg_error)?;
            permissions(&text).map(Some)
        }
        None => Ok(None),
    }
}

pub(super) async fn is_on_team(
    client: &Client,
    company: &CompanyId,
    user: &UserId,
) -> StoreResult<bool> {
    let row = query_opt(
        client,
        "SELECT 1 FROM team_members WHERE company_id = $1 AND user_id = $2",
        &[&company.as_str(), &user.as_str()],
    )
    .await?;
    Ok(row.is_some())
}

pub(super) async fn create_app(client: &Client, title: String) -> StoreResult<App> {
    let app = App {
        id: AppId::generate().into_string(),
        title,
        created_at: Timestamp::now(),
    };
    execute(
        client,
        "INSERT INTO apps (id, title, created_at) VALUES ($1, $2, $3)",
        &[&app.id, &app.title, &app.created_at.as_millis()],
    )
    .await?;
    Ok(app)
}

pub(super) async fn install_app(
    client: &Client,
    app: &AppId,
    company: &CompanyId,
    permissions: Permissions,
) -> StoreResult<AppInstall> {
    // One statement tells apart a missing app, a missing company, and the installation made or
    // changed (keeping the first installation's time). Neither apps nor companies are deleted.
    let row = query_opt(
        client,
        "WITH a AS (SELECT id FROM apps WHERE id = $1),
              c AS (SELECT id FROM companies WHERE id = $2),
              ins AS (
                INSERT INTO app_installs (app_id, company_id, permissions, created_at)
                SELECT a.id, c.id, $3, $4 FROM a, c
                ON CONFLICT (app_id, company_id) DO UPDATE SET permissions = excluded.permissions
                RETURNING created_at)
         SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM c),
                (SELECT created_at FROM ins)",
        &[
            &app.as_str(),
            &company.as_str(),
            &permissions.to_string(),
            &Timestamp::now().as_millis(),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Internal("installing answered no row".into()))?;
    let app_found: bool = row.try_get(0).map_err(pg_error)?;
    let company_found: bool = row.try_get(1).map_err(pg_error)?;
    let created_at: Option<i64> = row.try_get(2).map_err(pg_error)?;
    match (app_found, company_found, created_at) {
        (false, _, _) => Err(StoreError::NotFound(format!("no app {app}"))),
        (true, false, _) => Err(StoreError::NotFound(format!("no company {company}"))),
        (true, true, Some(created_at)) => Ok(AppInstall {
            app_id: app.as_str().to_owned(),
            company_id: company.as_str().to_owned(),
            permissions,
            created_at: ts(created_at),
        }),
        (true, true, None) => Err(StoreError::Internal(
            "the installation was not written".into(),
        )),
    }
}

pub(super) async fn uninstall_app(
    client: &Client,
    app: &AppId,
    company: &CompanyId,
) -> StoreResult<bool> {
    let removed = execute(
        client,
        "DELETE FROM app_installs WHERE app_id = $1 AND company_id = $2",
        &[&app.as_str(), &company.as_str()],
    )
    .await?;
    Ok(removed > 0)
}

pub(super) async fn create_app_key(
    client: &Client,
    app: AppId,
    permissions: Permissions,
    secret_hash: [u8; 32],
) -> StoreResult<AppKey> {
    let key = AppKey {
        id: KeyId::generate(),
        app_id: app,
        permissions,
        created_at: Timestamp::now(),
        revoked: false,
        secret_hash,
    };
    let written = execute(
        client,
        "INSERT INTO app_keys (id, app_id, secret_hash, permissions, created_at)
         SELECT $1, id, $3, $4, $5 FROM apps WHERE id = $2",
        &[
            &key.id.as_str(),
            &key.app_id.as_str(),
            &key.secret_hash.as_slice(),
            &key.permissions.to_string(),
            &key.created_at.as_millis(),
        ],
    )
    .await?;
    if written == 0 {
        return Err(StoreError::NotFound(format!("no app {}", key.app_id)));
    }
    Ok(key)
}

pub(super) async fn list_keys(client: &Client, owner: &KeyOwner) -> StoreResult<Vec<KeyListing>> {
    let (sql, id) = match owner {
        KeyOwner::Company(company) => {
            if !exists(
                client,
                "SELECT 1 FROM companies WHERE id = $1",
                company.as_str(),
            )
            .await?
            {
                return Err(StoreError::NotFound(format!("no company {company}")));
            }
            (
                "SELECT id, permissions, created_at, revoked_at FROM api_keys
                 WHERE company_id = $1 ORDER BY created_at, id",
                company.as_str(),
            )
        }
        KeyOwner::App(app) => {
            app_exists(client, app).await?;
            (
                "SELECT id, permissions, created_at, revoked_at FROM app_keys
                 WHERE app_id = $1 ORDER BY created_at, id",
                app.as_str(),
            )
        }
    };
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    let rows = client.query(&statement, &[&id]).await.map_err(pg_error)?;
    rows.iter()
        .map(|row| {
            let text: String = row.try_get(1).map_err(pg_error)?;
            let revoked_at: Option<i64> = row.try_get(3).map_err(pg_error)?;
            Ok(KeyListing {
                id: row.try_get(0).map_err(pg_error)?,
                company_id: matches!(owner, KeyOwner::Company(_)).then(|| id.to_owned()),
                app_id: matches!(owner, KeyOwner::App(_)).then(|| id.to_owned()),
                permissions: permissions(&text)?,
                created_at: ts(row.try_get(2).map_err(pg_error)?),
                revoked_at: revoked_at.map(ts),
            })
        })
        .collect()
}

pub(super) async fn revoke_key(client: &Client, id: &KeyId) -> StoreResult<bool> {
    // Key ids are unique across both tables in practice; revoke wherever it is.
    let row = query_opt(
        client,
        "WITH c AS (
            UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING 1),
              a AS (
            UPDATE app_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM c) OR EXISTS (SELECT 1 FROM a)",
        &[&id.as_str(), &Timestamp::now().as_millis()],
    )
    .await?;
    match row {
        Some(row) => row.try_get(0).map_err(pg_error),
        None => Ok(false),
    }
}

pub(super) async fn create_user_token(
    client: &Client,
    user: UserId,
    scopes: Permissions,
    expires_at: i64,
    secret_hash: [u8; 32],
) -> StoreResult<UserToken> {
    let token = UserToken {
        id: UserTokenId::generate(),
        user_id: user,
        scopes,
        created_at: Timestamp::now(),
        expires_at,
        revoked: false,
        secret_hash,
    };
    let written = execute(
        client,
        "INSERT INTO user_tokens (id, user_id, secret_hash, scopes, created_at, expires_at)
         SELECT $1, id, $3, $4, $5, $6 FROM users WHERE id = $2",
        &[
            &token.id.as_str(),
            &token.user_id.as_str(),
            &token.secret_hash.as_slice(),
            &token.scopes.to_string(),
            &token.created_at.as_millis(),
            &token.expires_at,
        ],
    )
    .await?;
    if written == 0 {
        return Err(StoreError::NotFound(format!("no user {}", token.user_id)));
    }
    Ok(token)
}

pub(super) async fn revoke_user_token(client: &Client, id: &UserTokenId) -> StoreResult<bool> {
    let changed = execute(
        client,
        "UPDATE user_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        &[&id.as_str(), &Timestamp::now().as_millis()],
    )
    .await?;
    Ok(changed > 0)
}

pub(super) async fn add_to_team(
    client: &Client,
    company: CompanyId,
    user: UserId,
) -> StoreResult<TeamMember> {
    let member = TeamMember {
        company_id: company.as_str().to_owned(),
        user_id: user.as_str().to_owned(),
        created_at: Timestamp::now(),
    };
    let row = query_opt(
        client,
        "WITH c AS (SELECT id FROM companies WHERE id = $1),
              u AS (SELECT id FROM users WHERE id = $2),
              ins AS (
                INSERT INTO team_members (company_id, user_id, created_at)
                SELECT c.id, u.id, $3 FROM c, u
                ON CONFLICT (company_id, user_id) DO NOTHING
                RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM ins)",
        &[
            &member.company_id,
            &member.user_id,
            &member.created_at.as_millis(),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Internal("adding to a team answered no row".into()))?;
    let flags: (bool, bool, bool) = (
        row.try_get(0).map_err(pg_error)?,
        row.try_get(1).map_err(pg_error)?,
        row.try_get(2).map_err(pg_error)?,
    );
    match flags {
        (false, _, _) => Err(StoreError::NotFound(format!("no company {company}"))),
        (true, false, _) => Err(StoreError::NotFound(format!("no user {user}"))),
        (true, true, false) => Err(StoreError::Conflict(format!(
            "user {user} is already on the team of company {company}"
        ))),
        (true, true, true) => Ok(member),
    }
}

pub(super) async fn remove_from_team(
    client: &Client,
    company: &CompanyId,
    user: &UserId,
) -> StoreResult<bool> {
    let removed = execute(
        client,
        "DELETE FROM team_members WHERE company_id = $1 AND user_id = $2",
        &[&company.as_str(), &user.as_str()],
    )
    .await?;
    Ok(removed > 0)
}
