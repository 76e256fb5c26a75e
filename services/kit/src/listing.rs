//! Lists with name search and keyset paging, shared by every owning service.
//!
//! Each searchable table has a companion table of the case-folded words of its names, so a
//! search for "ada lov" is two index range scans (`word >= 'ada' AND word < 'ada\u{10FFFF}'`)
//! rather than a scan of every row. Pages are keyset pages on the UUID v7 id: `id > after ORDER
//! BY id LIMIT n`, as fast on the millionth row as on the first.

use shared_events::{ListQuery, Page};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection, SqliteExecutor, SqlitePool};
use uuid::Uuid;

/// Longest word kept for search; longer words are cut.
const MAX_WORD_CHARS: usize = 40;
/// Most words taken from a name, and from a search query.
const MAX_NAME_WORDS: usize = 12;
const MAX_QUERY_WORDS: usize = 5;

/// The case-folded words of a name, without duplicates: "Mary-Jane O'Neil" → mary, jane, o, neil.
pub fn name_words(name: &str) -> Vec<String> {
    fold_words(name, MAX_NAME_WORDS)
}

fn fold_words(text: &str, at_most: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let folded: String = word.to_lowercase().chars().take(MAX_WORD_CHARS).collect();
        if !words.contains(&folded) {
            words.push(folded);
        }
        if words.len() == at_most {
            break;
        }
    }
    words
}

/// The tables behind one searchable list.
#[derive(Debug, Clone, Copy)]
pub struct SearchableTable {
    /// The entity table, with `id`, `deleted_at` and the `columns`.
    pub table: &'static str,
    /// Columns selected for a list item, in the order the caller's row type expects.
    pub columns: &'static str,
    /// The companion `(word, <owner>)` table.
    pub words_table: &'static str,
    pub words_owner: &'static str,
    /// A column a search also matches exactly (a medical record number, a username).
    pub exact_column: Option<&'static str>,
}

impl SearchableTable {
    /// The live (not deleted) row with this id, read through `executor` (the pool, or a
    /// transaction that is about to change it).
    pub async fn live_row<'e, R, E>(&self, executor: E, id: Uuid) -> Result<Option<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
        E: SqliteExecutor<'e>,
    {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = $1 AND deleted_at IS NULL",
            self.columns, self.table
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(executor)
            .await
    }

    /// The rows of one page of `query` (plus one, see [`into_page`]).
    pub async fn page_rows<R>(
        &self,
        pool: &SqlitePool,
        query: &ListQuery,
    ) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        self.page_query(query)
            .build_query_as()
            .fetch_all(pool)
            .await
    }

    /// Replaces the search words of entity `id` (inside the caller's transaction).
    pub async fn index_name(
        &self,
        conn: &mut SqliteConnection,
        id: Uuid,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        let id_of_words = id;
        let id = id.to_string();
        let delete = format!(
            "DELETE FROM {} WHERE {} = $1",
            self.words_table, self.words_owner
        );
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(&id)
            .execute(&mut *conn)
            .await?;
        self.index_new_name(conn, id_of_words, name).await
    }

    /// Indexes the name of an entity that has no words yet (one just inserted).
    pub async fn index_new_name(
        &self,
        conn: &mut SqliteConnection,
        id: Uuid,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        let id = id.to_string();
        let words = name_words(name);
        if words.is_empty() {
            return Ok(());
        }
        let mut insert = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {} (word, {}) ",
            self.words_table, self.words_owner
        ));
        insert.push_values(words, |mut row, word| {
            row.push_bind(word).push_bind(id.clone());
        });
        insert.build().execute(&mut *conn).await?;
        Ok(())
    }

    /// The SQL for one page of `query`: live rows only, matching the search, after the cursor,
    /// one row more than the page size (to know whether there is a next page).
    pub fn page_query(&self, query: &ListQuery) -> QueryBuilder<Sqlite> {
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM {} WHERE deleted_at IS NULL",
            self.columns, self.table
        ));
        if let Some(after) = query.after {
            sql.push(" AND id > ").push_bind(after.to_string());
        }
        if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let words = fold_words(q, MAX_QUERY_WORDS);
            sql.push(" AND (");
            match self.exact_column {
                Some(column) => {
                    sql.push(format!("{column} = ")).push_bind(q.to_owned());
                }
                None => {
                    sql.push("0");
                }
            }
            if !words.is_empty() {
                sql.push(" OR (1");
                for word in words {
                    let upper = format!("{word}\u{10FFFF}");
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
}

/// Refuses list filters a service does not know (a typo must not silently widen a search).
pub fn refuse_unknown_filters(
    query: &ListQuery,
    known: &[&str],
) -> Result<(), shared_events::ServiceError> {
    match query
        .filters
        .keys()
        .find(|name| !known.contains(&name.as_str()))
    {
        None => Ok(()),
        Some(name) => Err(shared_events::ServiceError::bad_request(format!(
            "unknown filter {name:?}"
        ))),
    }
}

/// Cuts the extra row fetched by [`SearchableTable::page_query`] and sets the cursor.
pub fn into_page<T>(mut items: Vec<T>, query: &ListQuery, id_of: impl Fn(&T) -> Uuid) -> Page<T> {
    let limit = query.effective_limit() as usize;
    let next_after = if items.len() > limit {
        items.truncate(limit);
        items.last().map(id_of)
    } else {
        None
    };
    Page { items, next_after }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_distinct_lowercase_words() {
        assert_eq!(
            name_words("Mary-Jane O'Neil"),
            ["mary", "jane", "o", "neil"]
        );
        assert_eq!(name_words("ÉLODIE élodie"), ["élodie"]);
        assert!(name_words(" -- ").is_empty());
    }

    #[test]
    fn a_page_with_an_extra_row_has_a_cursor() {
        let query = ListQuery {
            limit: Some(2),
            ..Default::default()
        };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = into_page(ids.clone(), &query, |id| *id);
        assert_eq!(page.items, ids[..2]);
        assert_eq!(page.next_after, Some(ids[1]));
        let last = into_page(ids[..2].to_vec(), &query, |id| *id);
        assert_eq!(last.next_after, None);
    }
}
