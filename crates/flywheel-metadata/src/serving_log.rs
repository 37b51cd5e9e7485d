//! The prediction server's log index: the Parquet segments of logged
//! predictions (by model, version and hour), the requests each holds (so
//! feedback finds its request by id, across restarts), and the feedback
//! (ground truth) itself, one row per labelled prediction row.
//!
//! Feedback lives here rather than in segments of its own: it is sparse,
//! arrives out of order, a later label for the same row replaces the
//! earlier one, and both its check (is the id known?) and its join are
//! lookups by request id, which an index answers without opening files.

use crate::request_blocks::{self, BLOCK_BITS, Block};
use crate::{MetadataStore, Result};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::BTreeMap;

/// A segment just written, to be indexed with the requests it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSegment {
    pub model_name: String,
    pub version: i64,
    /// `YYYY-MM-DDTHH`, UTC.
    pub hour: String,
    /// Relative to the home.
    pub path: String,
    pub rows: i64,
    /// Microseconds since 1970 (UTC) of the first and last request in it.
    pub first_us: i64,
    pub last_us: i64,
    /// The kind of label its model's target takes.
    pub target: TargetKind,
}

/// A request in a segment being indexed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRow<'a> {
    pub request_id: &'a str,
    pub rows: i64,
    /// Microseconds since 1970, UTC.
    pub at_us: i64,
}

/// An indexed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: i64,
    pub model_name: String,
    pub version: i64,
    pub hour: String,
    pub path: String,
    pub rows: i64,
    pub first_us: i64,
    pub last_us: i64,
}

/// What kind of label a model's target takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Number,
    Text,
}

impl TargetKind {
    fn as_str(self) -> &'static str {
        match self {
            TargetKind::Number => "number",
            TargetKind::Text => "text",
        }
    }

    fn parse(s: &str) -> TargetKind {
        if s == "number" { TargetKind::Number } else { TargetKind::Text }
    }
}

/// One logged request: what feedback for its id is checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub request_id: String,
    pub model_name: String,
    pub version: i64,
    pub rows: i64,
    pub target: TargetKind,
    pub at_us: i64,
}

/// A ground-truth label.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Number(f64),
    Text(String),
}

/// The label of one row of one logged request.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub request_id: String,
    pub row: i64,
    pub model_name: String,
    pub label: Label,
    /// When the label arrived, microseconds since 1970 (UTC).
    pub at_us: i64,
    /// When its request was logged, microseconds since 1970 (UTC).
    pub request_at_us: i64,
}

/// Requests with ids of their own indexed by one statement: one statement
/// per row was most of the cost of logging a prediction.
const REQUESTS_PER_INSERT: usize = 128;

/// `INSERT OR REPLACE` of `n` requests (four values each) at once.
fn insert_requests(n: usize) -> String {
    let rows = vec!["(?, ?, ?, ?)"; n].join(", ");
    format!("INSERT OR REPLACE INTO serving_requests (request_id, segment_id, rows, at_us) VALUES {rows}")
}

/// The blocks of a segment, one row each.
fn insert_blocks(tx: &Transaction, segment_id: i64, blocks: &BTreeMap<(&str, u64), Block>) -> Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO serving_request_blocks (prefix, block, segment_id, first_n, last_n, requests)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for ((prefix, block), b) in blocks {
        let (block, first, last) = (*block as i64, b.first_n as i64, b.last_n as i64);
        st.execute(params![prefix, block, segment_id, first, last, b.bytes])?;
    }
    Ok(())
}

impl MetadataStore {
    /// Indexes a segment and the requests it holds, in one transaction; a
    /// request id seen again points at its latest segment. Ids the server
    /// made go by block (`request_blocks.rs`), others one row each.
    pub fn record_segment<'a>(
        &self,
        segment: &NewSegment,
        requests: impl IntoIterator<Item = RequestRow<'a>>,
    ) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO serving_segments (model_name, version, hour, path, rows, first_us, last_us, created_at, target)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                segment.model_name,
                segment.version,
                segment.hour,
                segment.path,
                segment.rows,
                segment.first_us,
                segment.last_us,
                flywheel_core::now_rfc3339(),
                segment.target.as_str()
            ],
        )?;
        let id = tx.last_insert_rowid();
        let mut blocks: BTreeMap<(&str, u64), Block> = BTreeMap::new();
        let mut others = Vec::new();
        for r in requests {
            match request_blocks::parse(r.request_id) {
                Some((prefix, n)) => blocks.entry((prefix, n >> BLOCK_BITS)).or_default().push(n, r.rows, r.at_us),
                None => others.push(r),
            }
        }
        insert_blocks(&tx, id, &blocks)?;
        for chunk in others.chunks(REQUESTS_PER_INSERT) {
            let mut st = tx.prepare_cached(&insert_requests(chunk.len()))?;
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 4);
            for r in chunk {
                values.extend([&r.request_id as &dyn rusqlite::ToSql, &id, &r.rows, &r.at_us]);
            }
            st.execute(values.as_slice())?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// The logged request with this id, if one was indexed.
    pub fn logged_request(&self, request_id: &str) -> Result<Option<LoggedRequest>> {
        if let Some(found) = self.made_request(request_id)? {
            return Ok(Some(found));
        }
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT r.request_id, s.model_name, s.version, r.rows, s.target, r.at_us
                 FROM serving_requests r JOIN serving_segments s ON s.id = r.segment_id WHERE r.request_id = ?1",
                [request_id],
                |r| {
                    Ok(LoggedRequest {
                        request_id: r.get(0)?,
                        model_name: r.get(1)?,
                        version: r.get(2)?,
                        rows: r.get(3)?,
                        target: TargetKind::parse(&r.get::<_, String>(4)?),
                        at_us: r.get(5)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// A request with an id of the made form, from the latest segment
    /// whose block holds it.
    fn made_request(&self, request_id: &str) -> Result<Option<LoggedRequest>> {
        let Some((prefix, n)) = request_blocks::parse(request_id) else { return Ok(None) };
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT b.requests, s.model_name, s.version, s.target
             FROM serving_request_blocks b JOIN serving_segments s ON s.id = b.segment_id
             WHERE b.prefix = ?1 AND b.block = ?2 AND b.first_n <= ?3 AND b.last_n >= ?3
             ORDER BY b.segment_id DESC",
        )?;
        let n_sql = i64::try_from(n).unwrap_or(i64::MAX);
        let mut rows = st.query(params![prefix, n_sql >> BLOCK_BITS, n_sql])?;
        while let Some(r) = rows.next()? {
            let bytes: Vec<u8> = r.get(0)?;
            if let Some((count, at_us)) = request_blocks::find(&bytes, n) {
                return Ok(Some(LoggedRequest {
                    request_id: request_id.to_string(),
                    model_name: r.get(1)?,
                    version: r.get(2)?,
                    rows: count,
                    target: TargetKind::parse(&r.get::<_, String>(3)?),
                    at_us,
                }));
            }
        }
        Ok(None)
    }

    /// Records labels in one transaction; a label for a row that has one
    /// replaces it.
    pub fn record_feedback(&self, items: &[Feedback]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO serving_feedback
                 (request_id, row, model_name, label_num, label_text, at_us, request_at_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for f in items {
                let (num, text) = match &f.label {
                    Label::Number(n) => (Some(*n), None),
                    Label::Text(t) => (None, Some(t.as_str())),
                };
                st.execute(params![f.request_id, f.row, f.model_name, num, text, f.at_us, f.request_at_us])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The segments of `model` that may hold requests in `[since, until)`
    /// (microseconds, UTC; `None` is open), oldest first.
    pub fn segments(&self, model: &str, since_us: Option<i64>, until_us: Option<i64>) -> Result<Vec<Segment>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, model_name, version, hour, path, rows, first_us, last_us FROM serving_segments
             WHERE model_name = ?1 AND (?2 IS NULL OR last_us >= ?2) AND (?3 IS NULL OR first_us < ?3)
             ORDER BY first_us, id",
        )?;
        let rows = st
            .query_map(params![model, since_us, until_us], |r| {
                Ok(Segment {
                    id: r.get(0)?,
                    model_name: r.get(1)?,
                    version: r.get(2)?,
                    hour: r.get(3)?,
                    path: r.get(4)?,
                    rows: r.get(5)?,
                    first_us: r.get(6)?,
                    last_us: r.get(7)?,
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The versions of `model` with logged rows at or after `since_us`
    /// (every version that has any when `None`), in order.
    pub fn logged_versions(&self, model: &str, since_us: Option<i64>) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT version FROM serving_segments
             WHERE model_name = ?1 AND (?2 IS NULL OR last_us >= ?2) ORDER BY version",
        )?;
        let rows = st.query_map(params![model, since_us], |r| r.get(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every indexed segment, for `doctor`.
    pub fn all_segments(&self) -> Result<Vec<Segment>> {
        let mut all = Vec::new();
        for model in self.logged_models()? {
            all.extend(self.segments(&model, None, None)?);
        }
        Ok(all)
    }

    /// Drops a segment whose file is gone from the index, with its
    /// requests, in one transaction (their feedback stays, with no logged
    /// rows to join).
    pub fn forget_segment(&self, id: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM serving_requests WHERE segment_id = ?1", [id])?;
        tx.execute("DELETE FROM serving_request_blocks WHERE segment_id = ?1", [id])?;
        tx.execute("DELETE FROM serving_segments WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Every model with logged predictions, by name.
    pub fn logged_models(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT DISTINCT model_name FROM serving_segments ORDER BY model_name")?;
        let rows = st.query_map([], |r| r.get(0))?.collect::<std::result::Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// The labels of `model` that arrived in `(after, until]`: each one's
    /// request time and arrival time (µs), by the arrival index.
    pub fn labels_arrived(&self, model: &str, after_us: i64, until_us: i64) -> Result<Vec<(i64, i64)>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT f.request_at_us, f.at_us FROM serving_feedback f
             WHERE f.model_name = ?1 AND f.at_us > ?2 AND f.at_us <= ?3 AND f.request_at_us IS NOT NULL",
        )?;
        let rows = st.query_map(params![model, after_us, until_us], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// The labels of `model`'s requests logged in `[since, until)`.
    pub fn feedback(&self, model: &str, since_us: Option<i64>, until_us: Option<i64>) -> Result<Vec<Feedback>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT f.request_id, f.row, f.model_name, f.label_num, f.label_text, f.at_us, f.request_at_us
             FROM serving_feedback f
             WHERE f.model_name = ?1 AND f.request_at_us IS NOT NULL
               AND (?2 IS NULL OR f.request_at_us >= ?2) AND (?3 IS NULL OR f.request_at_us < ?3)",
        )?;
        let rows = st
            .query_map(params![model, since_us, until_us], |r| {
                let num: Option<f64> = r.get(3)?;
                let text: Option<String> = r.get(4)?;
                let label = match (num, text) {
                    (Some(n), _) => Label::Number(n),
                    (None, t) => Label::Text(t.unwrap_or_default()),
                };
                Ok(Feedback {
                    request_id: r.get(0)?,
                    row: r.get(1)?,
                    model_name: r.get(2)?,
                    label,
                    at_us: r.get(5)?,
                    request_at_us: r.get(6)?,
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, MetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = MetadataStore::open(&dir.path().join("metadata.db")).unwrap();
        (dir, s)
    }

    fn segment(version: i64, first_us: i64, last_us: i64, path: &str) -> NewSegment {
        NewSegment {
            model_name: "m".into(),
            version,
            hour: "2026-11-30T08".into(),
            path: path.into(),
            rows: 2,
            first_us,
            last_us,
            target: TargetKind::Text,
        }
    }

    fn row(request_id: &str, at_us: i64) -> RequestRow<'_> {
        RequestRow { request_id, rows: 2, at_us }
    }

    fn request(id: &str, at_us: i64) -> LoggedRequest {
        LoggedRequest {
            request_id: id.into(),
            model_name: "m".into(),
            version: 1,
            rows: 2,
            target: TargetKind::Text,
            at_us,
        }
    }

    #[test]
    fn segments_are_found_by_window_and_requests_by_id() {
        let (_d, s) = store();
        s.record_segment(&segment(1, 100, 200, "a.parquet"), [row("r1", 100), row("r2", 200)]).unwrap();
        s.record_segment(&segment(2, 300, 400, "b.parquet"), [row("r3", 300)]).unwrap();
        let paths = |since, until| -> Vec<String> {
            s.segments("m", since, until).unwrap().into_iter().map(|g| g.path).collect()
        };
        assert_eq!(paths(None, None), ["a.parquet", "b.parquet"]);
        assert_eq!(paths(Some(250), None), ["b.parquet"]);
        assert_eq!(paths(None, Some(300)), ["a.parquet"]);
        assert_eq!(paths(Some(201), Some(300)), Vec::<String>::new());
        assert!(s.segments("other", None, None).unwrap().is_empty());
        assert_eq!(s.logged_models().unwrap(), ["m"]);
        assert_eq!(s.logged_request("r2").unwrap(), Some(request("r2", 200)));
        assert_eq!(s.logged_request("nope").unwrap(), None);
        assert_eq!(s.all_segments().unwrap().len(), 2);
        let first = s.segments("m", None, Some(300)).unwrap()[0].id;
        s.forget_segment(first).unwrap();
        assert_eq!(paths(None, None), ["b.parquet"]);
        assert_eq!(s.logged_request("r1").unwrap(), None, "its requests go with it");
        assert!(s.logged_request("r3").unwrap().is_some());
    }

    #[test]
    fn a_segment_of_many_requests_indexes_every_one() {
        let (_d, s) = store();
        let ids: Vec<String> = (0..300).map(|i| format!("r{i}")).collect();
        let rows = ids.iter().enumerate().map(|(i, id)| RequestRow { request_id: id, rows: 1, at_us: i as i64 });
        s.record_segment(&segment(1, 0, 299, "a.parquet"), rows).unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.logged_request(id).unwrap().map(|r| r.at_us), Some(i as i64), "{id}");
        }
    }

    #[test]
    fn requests_and_feedback_logged_before_the_lean_index_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
            )
            .unwrap();
            for (v, sql) in crate::migrations::MIGRATIONS.iter().filter(|(v, _)| *v <= 6) {
                conn.execute_batch(sql).unwrap();
                conn.execute("INSERT INTO schema_migrations VALUES (?1, 'then')", [v]).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO serving_segments VALUES (1, 'm', 1, '2026-11-30T08', 'a.parquet', 2, 100, 100, 'then');
                 INSERT INTO serving_requests VALUES ('r1', 'm', 1, 2, 'text', 100, 1);
                 INSERT INTO serving_feedback VALUES ('r1', 1, 'm', NULL, 'yes', 900);",
            )
            .unwrap();
        }
        let s = MetadataStore::open(&path).unwrap();
        assert_eq!(s.logged_request("r1").unwrap(), Some(request("r1", 100)));
        let label = Feedback {
            request_id: "r1".into(),
            row: 1,
            model_name: "m".into(),
            label: Label::Text("yes".into()),
            at_us: 900,
            request_at_us: 100,
        };
        assert_eq!(s.feedback("m", Some(100), Some(101)).unwrap(), [label]);
        assert_eq!(s.labels_arrived("m", 0, 1000).unwrap(), [(100, 900)]);
    }

    #[test]
    fn a_later_label_replaces_an_earlier_one_and_feedback_follows_its_request_window() {
        let (_d, s) = store();
        s.record_segment(&segment(1, 100, 200, "a.parquet"), [row("r1", 100), row("r2", 200)]).unwrap();
        let fb = |id: &str, row, label: Label| Feedback {
            request_id: id.into(),
            row,
            model_name: "m".into(),
            label,
            at_us: 900,
            request_at_us: if id == "r1" { 100 } else { 200 },
        };
        s.record_feedback(&[fb("r1", 0, Label::Text("no".into())), fb("r2", 1, Label::Number(2.5))]).unwrap();
        s.record_feedback(&[fb("r1", 0, Label::Text("yes".into()))]).unwrap();
        let mut all = s.feedback("m", None, None).unwrap();
        all.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        assert_eq!(all, [fb("r1", 0, Label::Text("yes".into())), fb("r2", 1, Label::Number(2.5))]);
        assert_eq!(s.feedback("m", Some(150), None).unwrap(), [fb("r2", 1, Label::Number(2.5))]);
        assert!(s.feedback("m", None, Some(100)).unwrap().is_empty());
    }

    #[test]
    fn made_ids_are_indexed_by_block_and_found_from_the_latest_segment_that_holds_them() {
        let (_d, s) = store();
        let ids = crate::RequestIds::new(1_764_000_000_000_000, 7);
        let made: Vec<String> = (0..10_000).map(|_| ids.make()).collect();
        let every_other = made.iter().enumerate().step_by(2);
        let rows = every_other.map(|(i, id)| RequestRow { request_id: id, rows: 1 + (i as i64 % 3), at_us: i as i64 });
        s.record_segment(&segment(1, 0, 9_999, "a.parquet"), rows).unwrap();
        let blocks: i64 = s.conn().query_row("SELECT count(*) FROM serving_request_blocks", [], |r| r.get(0)).unwrap();
        assert_eq!(blocks, 3, "10,000 ids in blocks of 4,096");
        for (i, id) in made.iter().enumerate() {
            let found = s.logged_request(id).unwrap();
            let want = (i % 2 == 0).then(|| (1 + i as i64 % 3, i as i64));
            assert_eq!(found.map(|r| (r.rows, r.at_us)), want, "{id}");
        }
        // Shadowed: the same id logged again by another version, later.
        s.record_segment(&segment(2, 20_000, 20_000, "b.parquet"), [row(&made[4], 20_000), row("given", 5)]).unwrap();
        let again = s.logged_request(&made[4]).unwrap().unwrap();
        assert_eq!((again.version, again.at_us, again.rows), (2, 20_000, 2));
        assert_eq!(s.logged_request("given").unwrap().map(|r| r.version), Some(2));
        let second = s.segments("m", Some(20_000), None).unwrap()[0].id;
        s.forget_segment(second).unwrap();
        assert_eq!(s.logged_request(&made[4]).unwrap().map(|r| r.version), Some(1), "back to the first");
        assert_eq!(s.logged_request("given").unwrap(), None);
    }
}
