//! Lists with name search and keyset paging, shared by every owning service.
//!
//! Each searchable table has a companion table of the case-folded words of its names, keyed
//! `(word, owner)`. Pages are keyset pages on the UUID v7 id: `id > after ORDER BY id LIMIT n`,
//! as fast on the millionth row as on the first.
//!
//! A search for "ada lov" must stay as fast at a million patients as at ten thousand, though
//! "ada" then prefixes thirty times more names. So it is driven by one query word: its prefix is
//! first expanded into the few distinct indexed words it covers (a skip scan: one index seek
//! per word), then, for each of those words, the `(word, owner)` key yields owners already in id
//! order, each checked for the other query words through the owner index, and the scan stops as
//! soon as the page is full. The cost follows the page size and how rare the match is, not the
//! table's size. A prefix that covers too many distinct words (a single letter) falls back to
//! matching each word's whole range.

use shared_events::{ListQuery, Page};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteExecutor, SqlitePool};
use uuid::Uuid;

use crate::handle::Db;

mod postgres;

/// Longest word kept for search; longer words are cut.
const MAX_WORD_CHARS: usize = 40;
/// Most words taken from a name, and from a search query.
const MAX_NAME_WORDS: usize = 12;
const MAX_QUERY_WORDS: usize = 5;
/// Most distinct indexed words one query word may stand for in a driven search (see above).
const MAX_EXPANSIONS: usize = 16;

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
        match self.driven_search(pool, query).await? {
            Some(mut search) => search.build_query_as().fetch_all(pool).await,
            None => {
                self.page_query(query)
                    .build_query_as()
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The distinct indexed words that start with `prefix`, at most `MAX_EXPANSIONS + 1` (one
    /// more says "too many"), found by one index seek each.
    async fn expand(&self, pool: &SqlitePool, prefix: &str) -> Result<Vec<String>, sqlx::Error> {
        let table = self.words_table;
        let sql = format!(
            "WITH RECURSIVE found(word) AS (
                SELECT (SELECT word FROM {table} WHERE word >= $1 AND word < $2 ORDER BY word LIMIT 1)
                UNION ALL
                SELECT (SELECT word FROM {table} WHERE word > found.word AND word < $2 ORDER BY word LIMIT 1)
                FROM found WHERE found.word IS NOT NULL
            )
            SELECT word FROM found WHERE word IS NOT NULL LIMIT $3"
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(prefix)
            .bind(upper_bound(prefix))
            .bind((MAX_EXPANSIONS + 1) as i64)
            .fetch_all(pool)
            .await
    }

    /// The page of a search, driven by the query word that covers the fewest distinct words
    /// (see the module's documentation); `None` when the query is not a search, or every word
    /// is too broad to drive one.
    async fn driven_search(
        &self,
        pool: &SqlitePool,
        query: &ListQuery,
    ) -> Result<Option<QueryBuilder<Sqlite>>, sqlx::Error> {
        let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
            return Ok(None);
        };
        let words = fold_words(q, MAX_QUERY_WORDS);
        let mut driver: Option<(usize, Vec<String>)> = None;
        for (index, word) in words.iter().enumerate() {
            let expanded = self.expand(pool, word).await?;
            if expanded.len() <= MAX_EXPANSIONS
                && driver
                    .as_ref()
                    .is_none_or(|(_, best)| expanded.len() < best.len())
            {
                driver = Some((index, expanded));
            }
        }
        let (driving, expansions) = match driver {
            Some(found) => found,
            None if words.is_empty() => (0, Vec::new()),
            None => return Ok(None),
        };
        let (table, owner, words_table) = (self.table, self.words_owner, self.words_table);
        let limit = i64::from(query.effective_limit()) + 1;
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM {table} WHERE id IN (SELECT DISTINCT id FROM (",
            self.columns
        ));
        let mut branches = 0;
        for expansion in expansions {
            if branches > 0 {
                sql.push(" UNION ALL ");
            }
            branches += 1;
            sql.push(format!(
                "SELECT * FROM (SELECT w.{owner} AS id FROM {words_table} w JOIN {table} t ON t.id = w.{owner} \
                 WHERE t.deleted_at IS NULL AND w.word = "
            ))
            .push_bind(expansion);
            if let Some(after) = query.after {
                sql.push(format!(" AND w.{owner} > "))
                    .push_bind(after.to_string());
            }
            for (index, other) in words.iter().enumerate() {
                if index == driving {
                    continue;
                }
                sql.push(format!(
                    " AND EXISTS (SELECT 1 FROM {words_table} o WHERE o.{owner} = w.{owner} AND o.word >= "
                ))
                .push_bind(other.clone())
                .push(" AND o.word < ")
                .push_bind(upper_bound(other))
                .push(")");
            }
            sql.push(format!(" ORDER BY w.{owner} LIMIT "))
                .push_bind(limit)
                .push(")");
        }
        if let Some(column) = self.exact_column {
            if branches > 0 {
                sql.push(" UNION ALL ");
            }
            branches += 1;
            sql.push(format!(
                "SELECT * FROM (SELECT id FROM {table} WHERE deleted_at IS NULL AND {column} = "
            ))
            .push_bind(q.to_owned());
            if let Some(after) = query.after {
                sql.push(" AND id > ").push_bind(after.to_string());
            }
            sql.push(" LIMIT ").push_bind(limit).push(")");
        }
        if branches == 0 {
            // Nothing can match: no indexed word starts like the query, and no exact column.
            return Ok(Some(QueryBuilder::new(format!(
                "SELECT {} FROM {table} WHERE 0",
                self.columns
            ))));
        }
        sql.push(") ORDER BY id LIMIT ")
            .push_bind(limit)
            .push(") ORDER BY id");
        Ok(Some(sql))
    }

    /// Replaces the search words of entity `id` (inside the caller's transaction).
    pub fn index_name(&self, db: &Db, id: Uuid, name: &str) -> rusqlite::Result<()> {
        let delete = format!(
            "DELETE FROM {} WHERE {} = ?1",
            self.words_table, self.words_owner
        );
        db.prepare_cached(&delete)?.execute([id.to_string()])?;
        self.index_new_name(db, id, name)
    }

    /// Indexes the name of an entity that has no words yet (one just inserted).
    pub fn index_new_name(&self, db: &Db, id: Uuid, name: &str) -> rusqlite::Result<()> {
        let insert = format!(
            "INSERT INTO {} (word, {}) VALUES (?1, ?2)",
            self.words_table, self.words_owner
        );
        let mut insert = db.prepare_cached(&insert)?;
        let id = id.to_string();
        for word in name_words(name) {
            insert.execute((word, &id))?;
        }
        Ok(())
    }

    /// A live row read inside a write (on the handle), mapped by `map` from the columns in
    /// [`SearchableTable::columns`] order.
    pub fn live_row_in<R>(
        &self,
        db: &Db,
        id: Uuid,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<Option<R>> {
        use rusqlite::OptionalExtension;
        let sql = format!(
            "SELECT {} FROM {} WHERE id = ?1 AND deleted_at IS NULL",
            self.columns, self.table
        );
        db.prepare_cached(&sql)?
            .query_row([id.to_string()], map)
            .optional()
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
}

/// The end of the range of words that start with `prefix`.
fn upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
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

    const PEOPLE: SearchableTable = SearchableTable {
        table: "people",
        columns: "id",
        words_table: "people_words",
        words_owner: "person_id",
        exact_column: Some("code"),
    };

    /// A table of people with varied names: many share first names (prefixes that cover one
    /// word, several words, or more than `MAX_EXPANSIONS`), some are deleted.
    async fn people() -> (tempfile::TempDir, SqlitePool) {
        static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url_in(dir.path(), "people");
        let pool = crate::sqlite::open(&url, &NO_MIGRATIONS).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE people (id TEXT PRIMARY KEY, code TEXT, deleted_at TEXT);
             CREATE TABLE people_words (word TEXT NOT NULL, person_id TEXT NOT NULL,
                 PRIMARY KEY (word, person_id)) WITHOUT ROWID;
             CREATE INDEX people_words_by_person ON people_words (person_id);",
        )
        .execute(&pool)
        .await
        .unwrap();
        let first = ["Ada", "Adam", "Adele", "Al", "Alan", "Alba", "Bo"];
        let last = ["Lovelace", "Love", "Lowe", "Ada", "Smith"];
        let mut conn = pool.acquire().await.unwrap();
        for i in 0..400usize {
            let id = Uuid::now_v7();
            // 20 distinct "a…" words as extra middle names: "a" covers too many to drive.
            let name = format!(
                "{} A{} {}",
                first[i % 7],
                (b'a' + (i % 20) as u8) as char,
                last[(i / 7) % 5]
            );
            let deleted = (i % 13 == 0).then_some("2026-01-01");
            sqlx::query("INSERT INTO people (id, code, deleted_at) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(format!("C{i}"))
                .bind(deleted)
                .execute(&mut *conn)
                .await
                .unwrap();
            crate::handle::with_handle(&mut conn, |db| PEOPLE.index_name(db, id, &name))
                .await
                .unwrap()
                .unwrap();
        }
        (dir, pool)
    }

    /// Every page of `q`, following the cursor, as the plain range query finds it.
    async fn pages(pool: &SqlitePool, q: &str, driven: bool) -> Vec<Vec<String>> {
        let mut query = ListQuery {
            q: Some(q.to_owned()),
            limit: Some(7),
            ..Default::default()
        };
        let mut pages = Vec::new();
        loop {
            let rows: Vec<(String,)> = if driven {
                PEOPLE.page_rows(pool, &query).await.unwrap()
            } else {
                PEOPLE
                    .page_query(&query)
                    .build_query_as()
                    .fetch_all(pool)
                    .await
                    .unwrap()
            };
            let ids: Vec<String> = rows.into_iter().map(|(id,)| id).collect();
            let more = ids.len() > 7;
            let page: Vec<String> = ids.into_iter().take(7).collect();
            query.after = page.last().map(|id| id.parse().unwrap());
            pages.push(page);
            if !more {
                return pages;
            }
        }
    }

    #[tokio::test]
    async fn a_driven_search_finds_exactly_what_the_range_search_finds() {
        let (_dir, pool) = people().await;
        for q in [
            "ada",
            "ad",
            "adam love",
            "love ad",
            "al lo",
            "a",
            "a lov",
            "lo",
            "zed",
            "ada zed",
            "C14",
            "C13",
            "bo smith",
            "BO  S",
            "-- ",
            "al ab",
        ] {
            let plain = pages(&pool, q, false).await;
            let driven = pages(&pool, q, true).await;
            assert_eq!(driven, plain, "query {q:?}");
        }
        // The fixtures do exercise what they should: a broad prefix falls back, others drive.
        assert!(PEOPLE.expand(&pool, "a").await.unwrap().len() > MAX_EXPANSIONS);
        assert_eq!(
            PEOPLE.expand(&pool, "ad").await.unwrap(),
            ["ad", "ada", "adam", "adele"]
        );
        assert!(!pages(&pool, "ada", true).await.concat().is_empty());
    }
}
