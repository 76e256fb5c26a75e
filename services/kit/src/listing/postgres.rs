//! The same lists and search words on PostgreSQL: live rows, keyset pages, name search.
//!
//! The words table's `word` is `COLLATE "C"` (see the migrations), so `word >= p AND word <
//! p || U+10FFFF` is a prefix range in code point order, as on SQLite. A search is one query:
//! each query word a semi-join on the `(word, owner)` key, left to PostgreSQL's planner (the
//! SQLite side drives it by hand, see the parent module).

use shared_events::ListQuery;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{MAX_QUERY_WORDS, SearchableTable, fold_words, name_words, upper_bound};

impl SearchableTable {
    /// The live (not deleted) row with this id; `lock` takes its row lock for the rest of the
    /// caller's transaction (a change reads, decides, then writes it).
    pub async fn live_row_pg<'e, R, E>(
        &self,
        executor: E,
        id: Uuid,
        lock: bool,
    ) -> Result<Option<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
        E: PgExecutor<'e>,
    {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = $1 AND deleted_at IS NULL{}",
            self.columns,
            self.table,
            if lock { " FOR UPDATE" } else { "" }
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(executor)
            .await
    }

    /// The rows of one page of `query` (plus one, see [`super::into_page`]).
    pub async fn page_rows_pg<R>(
        &self,
        pool: &PgPool,
        query: &ListQuery,
    ) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        self.page_query_pg(query)
            .build_query_as()
            .fetch_all(pool)
            .await
    }

    /// The SQL for one page of `query`: live rows only, matching the search, after the cursor,
    /// one row more than the page size.
    pub fn page_query_pg(&self, query: &ListQuery) -> QueryBuilder<Postgres> {
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} FROM {} WHERE deleted_at IS NULL",
            self.columns, self.table
        ));
        if let Some(after) = query.after {
            sql.push(" AND id > ").push_bind(after);
        }
        if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            sql.push(" AND (");
            match self.exact_column {
                // PostgreSQL text cannot hold NUL: such a query matches no stored value.
                Some(column) if !q.contains('\0') => {
                    sql.push(format!("{column} = ")).push_bind(q.to_owned());
                }
                _ => {
                    sql.push("FALSE");
                }
            }
            let words = fold_words(q, MAX_QUERY_WORDS);
            if !words.is_empty() {
                sql.push(" OR (TRUE");
                for word in words {
                    let upper = upper_bound(&word);
                    sql.push(format!(
                        " AND id IN (SELECT {} FROM {} WHERE word >= ",
                        self.words_owner, self.words_table
                    ))
                    .push_bind(word)
                    .push(" AND word < ")
                    .push_bind(upper)
                    .push(")");
                }
                sql.push(")");
            }
            sql.push(")");
        }
        sql.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(query.effective_limit()) + 1);
        sql
    }

    /// Replaces the search words of entity `id` (inside the caller's transaction).
    pub async fn index_name_pg(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        let delete = format!(
            "DELETE FROM {} WHERE {} = $1",
            self.words_table, self.words_owner
        );
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        self.index_new_name_pg(conn, id, name).await
    }

    /// Indexes the name of an entity that has no words yet (one just inserted), in one
    /// statement.
    pub async fn index_new_name_pg(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        let words = name_words(name);
        if words.is_empty() {
            return Ok(());
        }
        let insert = format!(
            "INSERT INTO {} (word, {}) SELECT word, $2 FROM unnest($1::text[]) AS word",
            self.words_table, self.words_owner
        );
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind(words)
            .bind(id)
            .execute(conn)
            .await?;
        Ok(())
    }
}
