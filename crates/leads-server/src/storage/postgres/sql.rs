//! How statements reach PostgreSQL: straight to the server, or through a transaction pooler.
//!
//! **Directly** ([`PoolMode::Session`], the default), each connection prepares a statement once,
//! as a named prepared statement, and keeps it, so every later use is one round trip.
//!
//! **Through a transaction pooler** ([`PoolMode::Transaction`]: PgBouncer with
//! `pool_mode = transaction`, before version 1.21 or without `max_prepared_statements`), one
//! client's consecutive transactions, and even the prepare and the execute of one statement
//! outside a transaction, may run on different server connections. A named statement prepared on
//! one is missing on the next, or collides with another client's of the same name, and session
//! settings do not stay. So in this mode no named statement outlives a transaction: each statement
//! is sent unnamed with its parameter types, parsed, bound and run in one exchange
//! ([`tokio_postgres::Client::query_typed`]). The types of each SQL text are learnt once per
//! process, by preparing it inside a transaction and closing it again before the COMMIT.
//!
//! Store code is written once for both: it takes `&impl Sql` and calls
//! [`Sql::prepare_cached`] and the `query` family as it would on a `tokio_postgres` client.
//! PgBouncer's documentation of what transaction pooling breaks:
//! <https://www.pgbouncer.org/features.html#sql-feature-map-for-pooling-modes>.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row, SimpleQueryMessage, Statement};

/// Whether the connections are the server's own sessions or a transaction pooler's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// Every connection is a session of its own on the server: named prepared statements are
    /// cached per connection, and settings are sent once at connect.
    #[default]
    Session,
    /// A transaction pooler (PgBouncer's `pool_mode = transaction`) stands between: no named
    /// statement or session setting outlives a transaction.
    Transaction,
}

/// A statement ready to run: prepared on this connection, or (through a transaction pooler) its
/// SQL with the parameter types PostgreSQL gave it.
pub(crate) enum Stmt {
    Prepared(Statement),
    Typed { sql: Arc<str>, types: Arc<[Type]> },
}

/// What a statement is given as: a [`Stmt`] from [`Sql::prepare_cached`], or SQL text.
pub(crate) trait ToStmt: Sync {
    fn as_stmt(&self) -> Result<&Stmt, &str>;
}

impl ToStmt for Stmt {
    fn as_stmt(&self) -> Result<&Stmt, &str> {
        Ok(self)
    }
}

impl ToStmt for str {
    fn as_stmt(&self) -> Result<&Stmt, &str> {
        Err(self)
    }
}

impl ToStmt for String {
    fn as_stmt(&self) -> Result<&Stmt, &str> {
        Err(self)
    }
}

/// The parameter types of each SQL text.
type LearntTypes = HashMap<Arc<str>, Arc<[Type]>>;

/// The parameter types learnt for each SQL text, shared by every connection of one store.
#[derive(Clone, Default)]
pub(crate) struct Statements {
    mode: PoolMode,
    types: Arc<RwLock<LearntTypes>>,
}

impl Statements {
    pub(crate) fn new(mode: PoolMode) -> Self {
        Self {
            mode,
            types: Arc::default(),
        }
    }

    fn known(&self, sql: &str) -> Option<Stmt> {
        let types = self.types.read().unwrap_or_else(|e| e.into_inner());
        types.get_key_value(sql).map(|(sql, types)| Stmt::Typed {
            sql: sql.clone(),
            types: types.clone(),
        })
    }

    fn learn(&self, sql: &str, statement: &Statement) -> Stmt {
        let sql: Arc<str> = sql.into();
        let types: Arc<[Type]> = statement.params().into();
        self.types
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sql.clone(), types.clone());
        Stmt::Typed { sql, types }
    }
}

/// Runs statements on a pooled connection ([`PgClient`]) or in a transaction ([`PgTx`]), in the
/// store's [`PoolMode`]. Errors are PostgreSQL's, as `tokio_postgres` gives them.
#[async_trait]
pub(crate) trait Sql: Sync {
    /// The statement for `sql`: prepared and cached on this connection, or through a transaction
    /// pooler, its parameter types (learnt on first use).
    async fn prepare_cached(&self, sql: &str) -> Result<Stmt, Error>;

    /// The client or transaction underneath, for running a [`Stmt`].
    #[doc(hidden)]
    fn runner(&self) -> Runner<'_>;

    /// Runs `sql` once, unprepared: parsed, planned for these very values, bound and run in one
    /// exchange (an unnamed statement, so through a transaction pooler too). For look-ups whose
    /// best plan depends on the values, which a cached statement's generic plan would guess.
    async fn query_unprepared(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        self.runner().query_typed(sql, params).await
    }

    async fn query<S: ToStmt + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let owned;
        let statement = match statement.as_stmt() {
            Ok(statement) => statement,
            Err(sql) => {
                owned = self.prepare_cached(sql).await?;
                &owned
            }
        };
        match statement {
            Stmt::Prepared(statement) => self.runner().query(statement, params).await,
            Stmt::Typed { sql, types } => {
                self.runner().query_typed(sql, &typed(params, types)).await
            }
        }
    }

    async fn query_one<S: ToStmt + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        let owned;
        let statement = match statement.as_stmt() {
            Ok(statement) => statement,
            Err(sql) => {
                owned = self.prepare_cached(sql).await?;
                &owned
            }
        };
        match statement {
            Stmt::Prepared(statement) => self.runner().query_one(statement, params).await,
            Stmt::Typed { sql, types } => {
                self.runner()
                    .query_typed_one(sql, &typed(params, types))
                    .await
            }
        }
    }

    async fn query_opt<S: ToStmt + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let owned;
        let statement = match statement.as_stmt() {
            Ok(statement) => statement,
            Err(sql) => {
                owned = self.prepare_cached(sql).await?;
                &owned
            }
        };
        match statement {
            Stmt::Prepared(statement) => self.runner().query_opt(statement, params).await,
            Stmt::Typed { sql, types } => {
                self.runner()
                    .query_typed_opt(sql, &typed(params, types))
                    .await
            }
        }
    }

    /// Runs a statement and answers how many rows it wrote.
    async fn execute<S: ToStmt + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let owned;
        let statement = match statement.as_stmt() {
            Ok(statement) => statement,
            Err(sql) => {
                owned = self.prepare_cached(sql).await?;
                &owned
            }
        };
        match statement {
            Stmt::Prepared(statement) => self.runner().execute(statement, params).await,
            Stmt::Typed { sql, types } => {
                self.runner()
                    .execute_typed(sql, &typed(params, types))
                    .await
            }
        }
    }

    /// Runs statements without parameters over the simple protocol: the same in both modes.
    async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.runner().batch_execute(sql).await
    }

    /// Runs a statement without parameters over the simple protocol: the same in both modes.
    async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.runner().simple_query(sql).await
    }
}

/// Pairs each parameter with its type, as [`tokio_postgres::Client::query_typed`] takes them.
fn typed<'a>(
    params: &[&'a (dyn ToSql + Sync)],
    types: &[Type],
) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().copied().zip(types.iter().cloned()).collect()
}

/// A client or a transaction of `tokio_postgres`, which have the same methods but no trait in
/// common that has the typed ones.
#[doc(hidden)]
pub(crate) enum Runner<'a> {
    Client(&'a tokio_postgres::Client),
    Transaction(&'a tokio_postgres::Transaction<'a>),
}

macro_rules! run {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Runner::Client(c) => c.$method($($arg),*).await,
            Runner::Transaction(t) => t.$method($($arg),*).await,
        }
    };
}

impl Runner<'_> {
    async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        run!(self.batch_execute(sql))
    }
    async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        run!(self.simple_query(sql))
    }
    async fn query(&self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        run!(self.query(s, p))
    }
    async fn query_one(&self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        run!(self.query_one(s, p))
    }
    async fn query_opt(
        &self,
        s: &Statement,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        run!(self.query_opt(s, p))
    }
    async fn execute(&self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        run!(self.execute(s, p))
    }
    async fn query_typed(
        &self,
        s: &str,
        p: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        run!(self.query_typed(s, p))
    }
    async fn query_typed_one(
        &self,
        s: &str,
        p: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Row, Error> {
        run!(self.query_typed_one(s, p))
    }
    async fn query_typed_opt(
        &self,
        s: &str,
        p: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Option<Row>, Error> {
        run!(self.query_typed_opt(s, p))
    }
    async fn execute_typed(
        &self,
        s: &str,
        p: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, Error> {
        run!(self.execute_typed(s, p))
    }
}

/// A pooled connection, in the store's [`PoolMode`].
pub(crate) struct PgClient {
    client: deadpool_postgres::Client,
    statements: Statements,
}

impl PgClient {
    pub(crate) fn new(client: deadpool_postgres::Client, statements: Statements) -> Self {
        Self { client, statements }
    }

    /// Begins a transaction (READ COMMITTED, PostgreSQL's default, unless the server or the
    /// role sets another).
    pub(crate) async fn transaction(&mut self) -> Result<PgTx<'_>, Error> {
        let tx = self.client.transaction().await?;
        Ok(PgTx {
            tx,
            statements: self.statements.clone(),
        })
    }

    /// Begins a transaction at `isolation`, read-only when `read_only`.
    pub(crate) async fn transaction_with(
        &mut self,
        isolation: tokio_postgres::IsolationLevel,
        read_only: bool,
    ) -> Result<PgTx<'_>, Error> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(isolation)
            .read_only(read_only)
            .start()
            .await?;
        Ok(PgTx {
            tx,
            statements: self.statements.clone(),
        })
    }
}

#[async_trait]
impl Sql for PgClient {
    async fn prepare_cached(&self, sql: &str) -> Result<Stmt, Error> {
        match self.statements.mode {
            PoolMode::Session => self.client.prepare_cached(sql).await.map(Stmt::Prepared),
            PoolMode::Transaction => {
                if let Some(known) = self.statements.known(sql) {
                    return Ok(known);
                }
                // Inside a transaction, so the prepare and its close (sent when `statement`
                // is dropped, before the COMMIT) run on one server connection.
                self.client.batch_execute("BEGIN").await?;
                let learnt = match self.client.prepare(sql).await {
                    Ok(statement) => Ok(self.statements.learn(sql, &statement)),
                    Err(e) => Err(e),
                };
                let end = if learnt.is_ok() { "COMMIT" } else { "ROLLBACK" };
                self.client.batch_execute(end).await?;
                learnt
            }
        }
    }

    fn runner(&self) -> Runner<'_> {
        Runner::Client(&self.client)
    }
}

/// A transaction on a pooled connection, in the store's [`PoolMode`]. Dropped without
/// [`commit`](PgTx::commit), it rolls back.
pub(crate) struct PgTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    statements: Statements,
}

impl<'a> PgTx<'a> {
    /// The transaction underneath, for what only it has (portals). A statement prepared on it
    /// must be dropped before the transaction ends, so that through a pooler it is closed on
    /// the server connection it was made on.
    pub(crate) fn inner(&self) -> &deadpool_postgres::Transaction<'a> {
        &self.tx
    }

    pub(crate) async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), Error> {
        self.tx.rollback().await
    }
}

#[async_trait]
impl Sql for PgTx<'_> {
    async fn prepare_cached(&self, sql: &str) -> Result<Stmt, Error> {
        match self.statements.mode {
            PoolMode::Session => self.tx.prepare_cached(sql).await.map(Stmt::Prepared),
            PoolMode::Transaction => {
                if let Some(known) = self.statements.known(sql) {
                    return Ok(known);
                }
                // Closed again when `statement` is dropped, before this transaction ends.
                let statement = self.tx.prepare(sql).await?;
                Ok(self.statements.learn(sql, &statement))
            }
        }
    }

    fn runner(&self) -> Runner<'_> {
        Runner::Transaction(&self.tx)
    }
}

/// Takes `pgbouncer=true` (or `false`) out of a database URL's query, which PostgreSQL does not
/// know: answers the URL without it and the [`PoolMode`] it asks for, if it does. Any other value
/// is an error naming the parameter.
pub(super) fn split_pool_mode(
    url: &str,
) -> crate::storage::StoreResult<(String, Option<PoolMode>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut mode = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "pgbouncer" {
            mode = Some(match value.as_ref() {
                "true" => PoolMode::Transaction,
                "false" => PoolMode::Session,
                other => {
                    return Err(crate::storage::StoreError::Internal(format!(
                        "the database URL's pgbouncer {other:?} is not true or false"
                    )))
                }
            });
        } else {
            rest.append_pair(&name, &value);
        }
    }
    let rest = rest.finish();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{rest}")
    };
    Ok((url, mode))
}
