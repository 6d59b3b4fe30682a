//! Transcripts and their analysis (sentiment, summary, quality score, tags), written whole by an
//! external speech and AI service through the API, one per recording; and the recordings
//! search, which filters on the recording's row and on its transcript.
//!
//! ```text
//!   PUT /v1/recordings/{id}/transcript ─► TranscriptInput::check ─► Store::put_transcript
//!        (replaces the whole transcript; its audit entry in the same transaction)
//!   GET /v1/recordings?q=refund&... ───► Store::search_recordings ─► page + next cursor
//! ```
//!
//! Full-text search differs by backend (migration 0011): an FTS5 table kept in step by
//! triggers on SQLite, a GIN index on `to_tsvector('simple', full_text)` on PostgreSQL. Both
//! take `q` as words that must all occur, each matched whole and case-insensitively, with no
//! stemming: the same words find the same rows on both. A word is a whitespace-separated piece
//! of `q`; punctuation inside it splits it as the index split the text (`e-mail`, `don't`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::history::{MAX_CALLS_PAGE, SqlBuilder, decode_cursor, encode_cursor};
use super::recordings::recording_cols;
use super::rows::{FromStoreRow, RowExt};
use super::{AuditEntry, AuditWrite, Backend, RecordingRow, Store, StoreError, Use, now_ms};
use crate::model::TenantId;

/// Most segments a transcript may have (four hours of speech in 1.5 s turns).
pub const MAX_SEGMENTS: usize = 10_000;
/// Longest text of one segment, in characters.
pub const MAX_SEGMENT_CHARS: usize = 10_000;
/// Longest summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 20_000;
/// Longest speaker label, and longest tag, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Most tags on a transcript.
pub const MAX_TAGS: usize = 50;
/// Most words a search (`q`) may hold, and its longest text in characters.
pub const MAX_QUERY_WORDS: usize = 16;
pub const MAX_QUERY_CHARS: usize = 500;
/// The largest page of the recordings search: the calls listing's.
pub const MAX_RECORDINGS_PAGE: u32 = MAX_CALLS_PAGE;
/// The sentiments a transcript may carry: labels, as speech-analytics services give them per
/// call (a score would need a scale every service agrees on, and a filter on labels is exact).
pub const SENTIMENTS: [&str; 4] = ["positive", "neutral", "negative", "mixed"];
/// The highest channel a segment may name: recordings are mono (0) or stereo (0 caller, 1 agent).
pub const MAX_CHANNEL: u32 = 1;

/// One stretch of speech.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// 0: left (the caller in a stereo recording), 1: right (the agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
    /// A diarised speaker's label (`caller`, `agent`, `spk_1`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub text: String,
    /// 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// A transcript as the API writes it (replacing any before it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TranscriptInput {
    pub segments: Vec<Segment>,
    /// One of [`SENTIMENTS`].
    pub sentiment: Option<String>,
    pub summary: Option<String>,
    /// 0..=100.
    pub quality_score: Option<f64>,
    pub tags: Vec<String>,
}

/// What is wrong with a [`TranscriptInput`]: the field as the API names it
/// (`segments[3].end_ms`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Result<(), FieldProblem> {
    Err(FieldProblem {
        field: field.into(),
        message: message.into(),
    })
}

/// Free text of a transcript: any script (right-to-left marks included, which transcripts of
/// Arabic or Hebrew carry), but no control characters beyond line breaks and tabs (PostgreSQL
/// refuses NUL, and a terminal or log would act on the rest).
fn bad_text(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// A label (speaker, tag): one line of at most [`MAX_LABEL_CHARS`], not blank, none of the
/// characters names may not hold.
fn check_label(field: String, label: &str) -> Result<(), FieldProblem> {
    if label.trim().is_empty() {
        return problem(field, "must not be empty");
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return problem(
            field,
            format!("must be at most {MAX_LABEL_CHARS} characters"),
        );
    }
    if label.chars().any(crate::model::is_forbidden_in_text) {
        return problem(
            field,
            "must not contain control or bidirectional formatting characters",
        );
    }
    Ok(())
}

impl TranscriptInput {
    /// Every bound and rule, the first broken one named. Checked whole before anything is
    /// written.
    pub fn check(&self) -> Result<(), FieldProblem> {
        if self.segments.len() > MAX_SEGMENTS {
            return problem("segments", format!("at most {MAX_SEGMENTS} segments"));
        }
        for (i, s) in self.segments.iter().enumerate() {
            let at = |name: &str| format!("segments[{i}].{name}");
            if s.channel.is_none() && s.speaker.is_none() {
                return problem(at("speaker"), "a segment names its channel or its speaker");
            }
            if let Some(c) = s.channel
                && c > MAX_CHANNEL
            {
                return problem(
                    at("channel"),
                    "0 (left, the caller) or 1 (right, the agent)",
                );
            }
            if let Some(sp) = &s.speaker {
                check_label(at("speaker"), sp)?;
            }
            if s.start_ms < 0 {
                return problem(at("start_ms"), "must not be negative");
            }
            if s.end_ms < s.start_ms {
                return problem(at("end_ms"), "must not be before start_ms");
            }
            if s.text.chars().count() > MAX_SEGMENT_CHARS {
                return problem(
                    at("text"),
                    format!("must be at most {MAX_SEGMENT_CHARS} characters"),
                );
            }
            if bad_text(&s.text) {
                return problem(
                    at("text"),
                    "must not contain control characters other than line breaks and tabs",
                );
            }
            if let Some(c) = s.confidence
                && !(0.0..=1.0).contains(&c)
            {
                return problem(at("confidence"), "must be between 0 and 1");
            }
        }
        if let Some(s) = &self.sentiment
            && !SENTIMENTS.contains(&s.as_str())
        {
            return problem("sentiment", format!("one of {}", SENTIMENTS.join(", ")));
        }
        if let Some(summary) = &self.summary {
            if summary.chars().count() > MAX_SUMMARY_CHARS {
                return problem(
                    "summary",
                    format!("must be at most {MAX_SUMMARY_CHARS} characters"),
                );
            }
            if bad_text(summary) {
                return problem(
                    "summary",
                    "must not contain control characters other than line breaks and tabs",
                );
            }
        }
        if let Some(q) = self.quality_score
            && !(0.0..=100.0).contains(&q)
        {
            return problem("quality_score", "must be between 0 and 100");
        }
        if self.tags.len() > MAX_TAGS {
            return problem("tags", format!("at most {MAX_TAGS} tags"));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            check_label(format!("tags[{i}]"), tag)?;
            if self.tags[..i].contains(tag) {
                return problem(format!("tags[{i}]"), "listed twice");
            }
        }
        Ok(())
    }

    /// What `q` searches: the segments' texts, one a line.
    fn full_text(&self) -> String {
        let mut text = String::new();
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&s.text);
        }
        text
    }
}

/// A recording's stored transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptRow {
    pub recording_id: Uuid,
    pub tenant: TenantId,
    pub segments: Vec<Segment>,
    pub sentiment: Option<String>,
    pub summary: Option<String>,
    pub quality_score: Option<f64>,
    pub tags: Vec<String>,
    pub updated_at_ms: i64,
}

const TRANSCRIPT_COLS: &str =
    "recording_id, tenant_id, segments, sentiment, summary, quality_score, tags, updated_at";

impl FromStoreRow for TranscriptRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let segments = serde_json::from_value(row.json("segments")?)
            .map_err(|e| StoreError::Internal(format!("recording_transcripts.segments: {e}")))?;
        let tags = serde_json::from_value(row.json("tags")?)
            .map_err(|e| StoreError::Internal(format!("recording_transcripts.tags: {e}")))?;
        Ok(TranscriptRow {
            recording_id: row.uuid("recording_id")?,
            tenant: row.tenant("tenant_id")?,
            segments,
            sentiment: row.opt_string("sentiment")?,
            summary: row.opt_string("summary")?,
            quality_score: row.opt_f64("quality_score")?,
            tags,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

/// A recording found by the search, whether it has a transcript, and the transcript's
/// analysis (what a result list shows beside each recording).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingHit {
    pub recording: RecordingRow,
    pub has_transcript: bool,
    pub sentiment: Option<String>,
    pub quality_score: Option<f64>,
    pub tags: Vec<String>,
}

impl FromStoreRow for RecordingHit {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let tags = match row.opt_string("t_tags")? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Internal(format!("recording_transcripts.tags: {e}")))?,
            None => Vec::new(),
        };
        Ok(RecordingHit {
            recording: RecordingRow::from_row(row)?,
            has_transcript: row.bool("has_transcript")?,
            sentiment: row.opt_string("t_sentiment")?,
            quality_score: row.opt_f64("t_quality")?,
            tags,
        })
    }
}

/// Which recordings `search_recordings` returns. Every filter is optional and they all apply
/// (AND). `from_ms` is inclusive, `to_ms` exclusive (on the recording's start); a duration
/// filter leaves out recordings with no duration (running, or failed). `words`: see the module
/// doc ([`search_words`] makes them from `q`). `own_agent`: the agent of an agent key, which
/// sees only recordings its agent is heard in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordingFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub queue_id: Option<i64>,
    /// The campaign whose dial the call was.
    pub campaign_id: Option<i64>,
    /// Heard in the recording (any of its agents).
    pub agent_id: Option<i64>,
    /// Exactly this number, as the calls listing matches it.
    pub caller_number: Option<String>,
    pub status: Option<String>,
    pub min_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
    pub has_transcript: Option<bool>,
    pub words: Vec<String>,
    pub sentiment: Option<String>,
    pub min_quality: Option<f64>,
    /// One of the transcript's tags, exactly.
    pub tag: Option<String>,
    pub own_agent: Option<i64>,
    pub cursor: Option<String>,
    /// Clamped to `1..=`[`MAX_RECORDINGS_PAGE`].
    pub limit: u32,
}

/// The words of a search text: its whitespace-separated pieces that hold a letter or digit
/// (a piece of punctuation alone matches nothing on either backend). Invalid when there are
/// none, or more than [`MAX_QUERY_WORDS`].
pub fn search_words(q: &str) -> Result<Vec<String>, StoreError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(StoreError::invalid(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    if q.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "q",
            "must not contain control characters",
        ));
    }
    let words: Vec<String> = q
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        return Err(StoreError::invalid("q", "must contain a word"));
    }
    if words.len() > MAX_QUERY_WORDS {
        return Err(StoreError::invalid(
            "q",
            format!("at most {MAX_QUERY_WORDS} words"),
        ));
    }
    Ok(words)
}

/// An FTS5 query that matches rows holding every word: each word a quoted phrase (so nothing
/// in it is FTS5 syntax: `"` is doubled, `OR`, `NEAR`, `*` and `:` are plain text), which the
/// tokenizer splits as it split the text.
fn fts5_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Store {
    /// Writes the transcript of the tenant's recording `recording`, replacing any it had, with
    /// its audit entry in the same transaction. None (nothing written): no such recording of
    /// the tenant. Invalid input is refused (the API checks it first, naming the field).
    pub async fn put_transcript(
        &self,
        tenant: TenantId,
        recording: Uuid,
        input: &TranscriptInput,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<TranscriptRow>, StoreError> {
        input.check().map_err(|p| {
            StoreError::invalid("transcript", format!("{}: {}", p.field, p.message))
        })?;
        let segments = serde_json::to_value(&input.segments)
            .map_err(|e| StoreError::Internal(format!("segments do not serialise: {e}")))?;
        let tags = serde_json::Value::from(input.tags.clone());
        // INSERT ... SELECT from the tenant's recording: no row of it, nothing inserted, no
        // RETURNING row, and `change` rolls back (the audit entry with it). ON CONFLICT DO
        // UPDATE keeps the row (and on SQLite its rowid, which the FTS index refers to) and
        // fires the update trigger that re-indexes the text.
        let sql = format!(
            "INSERT INTO recording_transcripts (recording_id, tenant_id, segments, full_text, \
             sentiment, summary, quality_score, tags, updated_at) \
             SELECT id, tenant_id, $3, $4, $5, $6, $7, $8, $9 FROM recordings \
             WHERE tenant_id = $1 AND id = $2 \
             ON CONFLICT (recording_id) DO UPDATE SET segments = excluded.segments, \
             full_text = excluded.full_text, sentiment = excluded.sentiment, \
             summary = excluded.summary, quality_score = excluded.quality_score, \
             tags = excluded.tags, updated_at = excluded.updated_at \
             RETURNING {TRANSCRIPT_COLS}"
        );
        self.change(
            "transcript",
            sqlx::AssertSqlSafe(sql),
            args![
                tenant,
                recording,
                &segments,
                input.full_text(),
                input.sentiment.as_deref(),
                input.summary.as_deref(),
                input.quality_score,
                &tags,
                now_ms(),
            ],
            AuditWrite {
                entry: audit,
                tenant: Some(tenant),
            },
            |t: &TranscriptRow| t.recording_id.to_string(),
        )
        .await
    }

    /// The transcript of the tenant's recording `recording` (None: none written, no such
    /// recording, or another tenant's).
    pub async fn transcript(
        &self,
        tenant: TenantId,
        recording: Uuid,
    ) -> Result<Option<TranscriptRow>, StoreError> {
        let sql = format!(
            "SELECT {TRANSCRIPT_COLS} FROM recording_transcripts \
             WHERE tenant_id = $1 AND recording_id = $2"
        );
        self.fetch_optional(
            Use::Read,
            sqlx::AssertSqlSafe(sql),
            args![tenant, recording],
        )
        .await
    }

    /// One recording of the tenant's with whether it has a transcript (None: no such id, or
    /// another tenant's).
    pub async fn recording_hit(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<RecordingHit>, StoreError> {
        let mut b = SqlBuilder::default();
        b.push(HIT_SELECT)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id);
        let (sql, args) = b.finish();
        self.fetch_optional(Use::Read, sql, args).await
    }

    /// A page of the tenant's recordings that pass `filter`, newest first (by start, then id),
    /// and the cursor of the next page (None on the last). Pages neither overlap nor skip rows,
    /// whatever is inserted meanwhile (the calls listing's cursor, on the recording's start).
    pub async fn search_recordings(
        &self,
        tenant: TenantId,
        filter: &RecordingFilter,
    ) -> Result<(Vec<RecordingHit>, Option<String>), StoreError> {
        let limit = filter.limit.clamp(1, MAX_RECORDINGS_PAGE);
        let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;
        let backend = self.backend();

        let mut b = SqlBuilder::default();
        b.push(HIT_SELECT).push(" WHERE tenant_id = ").bind(tenant);
        if let Some(from) = filter.from_ms {
            b.push(" AND started_at >= ").bind(from);
        }
        if let Some(to) = filter.to_ms {
            b.push(" AND started_at < ").bind(to);
        }
        if let Some(queue) = filter.queue_id {
            b.push(" AND queue_id = ").bind(queue);
        }
        if let Some(campaign) = filter.campaign_id {
            b.push(" AND campaign_id = ").bind(campaign);
        }
        for agent in [filter.agent_id, filter.own_agent].into_iter().flatten() {
            heard(&mut b, backend, agent);
        }
        if let Some(caller) = &filter.caller_number {
            b.push(" AND caller_number = ").bind(caller.as_str());
        }
        if let Some(status) = &filter.status {
            b.push(" AND status = ").bind(status.as_str());
        }
        if let Some(min) = filter.min_duration_ms {
            b.push(" AND duration_ms >= ").bind(min);
        }
        if let Some(max) = filter.max_duration_ms {
            b.push(" AND duration_ms <= ").bind(max);
        }
        match filter.has_transcript {
            Some(true) => {
                b.push(" AND EXISTS (SELECT 1 FROM recording_transcripts t WHERE t.recording_id = recordings.id)");
            }
            Some(false) => {
                b.push(" AND NOT EXISTS (SELECT 1 FROM recording_transcripts t WHERE t.recording_id = recordings.id)");
            }
            None => {}
        }
        // The transcript's own fields: one correlated probe by the transcript's key.
        if filter.sentiment.is_some() || filter.min_quality.is_some() || filter.tag.is_some() {
            b.push(
                " AND EXISTS (SELECT 1 FROM recording_transcripts t \
                 WHERE t.recording_id = recordings.id",
            );
            if let Some(s) = &filter.sentiment {
                b.push(" AND t.sentiment = ").bind(s.as_str());
            }
            if let Some(q) = filter.min_quality {
                b.push(" AND t.quality_score >= ").bind(Some(q));
            }
            if let Some(tag) = &filter.tag {
                match backend {
                    Backend::Sqlite => b
                        .push(
                            " AND EXISTS (SELECT 1 FROM json_each(t.tags) WHERE json_each.value = ",
                        )
                        .bind(tag.as_str())
                        .push(")"),
                    Backend::Postgres => b
                        .push(" AND t.tags::jsonb @> jsonb_build_array(CAST(")
                        .bind(tag.as_str())
                        .push(" AS TEXT))"),
                };
            }
            b.push(")");
        }
        if !filter.words.is_empty() {
            // The full-text index yields the matching transcripts; the recordings are then
            // those ids (a semi-join both planners run from the index).
            match backend {
                Backend::Sqlite => b
                    .push(
                        " AND id IN (SELECT t.recording_id FROM recording_transcripts_fts \
                         JOIN recording_transcripts t ON t.seq = recording_transcripts_fts.rowid \
                         WHERE recording_transcripts_fts MATCH ",
                    )
                    .bind(fts5_query(&filter.words))
                    .push(" AND t.tenant_id = ")
                    .bind(tenant)
                    .push(")"),
                // The expression exactly as the index spells it (migration 0011).
                Backend::Postgres => b
                    .push(
                        " AND id IN (SELECT t.recording_id FROM recording_transcripts t \
                         WHERE to_tsvector('simple', t.full_text) @@ plainto_tsquery('simple', ",
                    )
                    .bind(filter.words.join(" "))
                    .push(") AND t.tenant_id = ")
                    .bind(tenant)
                    .push(")"),
            };
        }
        if let Some((at, id)) = after {
            // Row-value comparison (both backends): an index range scan on (started_at, id).
            b.push(" AND (started_at, id) < (")
                .bind(at)
                .push(", ")
                .bind(id)
                .push(")");
        }
        // One row more than asked tells whether there is a next page.
        b.push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .bind(i64::from(limit) + 1);
        let (sql, args) = b.finish();

        let mut rows: Vec<RecordingHit> = self.fetch_all(Use::Read, sql, args).await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|last| encode_cursor(last.recording.started_at_ms, last.recording.id))
        } else {
            None
        };
        Ok((rows, next))
    }
}

/// A recording's columns, whether it has a transcript and the transcript's analysis. Scalar
/// subqueries by the transcript's key rather than a join: the recording's columns are named
/// bare (`recording_cols!`), and `tenant_id` is in both tables.
const HIT_SELECT: &str = concat!(
    "SELECT ",
    recording_cols!(),
    ", EXISTS (SELECT 1 FROM recording_transcripts t WHERE t.recording_id = recordings.id) \
     AS has_transcript, \
     (SELECT t.sentiment FROM recording_transcripts t WHERE t.recording_id = recordings.id) \
     AS t_sentiment, \
     (SELECT t.quality_score FROM recording_transcripts t WHERE t.recording_id = recordings.id) \
     AS t_quality, \
     (SELECT t.tags FROM recording_transcripts t WHERE t.recording_id = recordings.id) \
     AS t_tags FROM recordings"
);

/// `agent` is one of the recording's agents (a JSON array of store ids).
fn heard(b: &mut SqlBuilder, backend: Backend, agent: i64) {
    match backend {
        Backend::Sqlite => b
            .push(
                " AND EXISTS (SELECT 1 FROM json_each(recordings.agents) WHERE json_each.value = ",
            )
            .bind(agent)
            .push(")"),
        Backend::Postgres => b
            .push(" AND recordings.agents::jsonb @> jsonb_build_array(CAST(")
            .bind(agent)
            .push(" AS BIGINT))"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(text: &str) -> Segment {
        Segment {
            channel: Some(0),
            speaker: None,
            start_ms: 0,
            end_ms: 1000,
            text: text.into(),
            confidence: Some(0.9),
        }
    }

    fn field_of(input: &TranscriptInput) -> Option<String> {
        input.check().err().map(|p| p.field)
    }

    #[test]
    fn a_broken_rule_is_named_by_its_field_path() {
        let ok = TranscriptInput {
            segments: vec![segment("hello"), segment("world")],
            sentiment: Some("mixed".into()),
            summary: Some("two words\nand a line".into()),
            quality_score: Some(100.0),
            tags: vec!["refund".into(), "vip".into()],
        };
        assert_eq!(ok.check(), Ok(()));
        let mut bad = ok.clone();
        bad.segments[1].end_ms = -1;
        assert_eq!(field_of(&bad).as_deref(), Some("segments[1].end_ms"));
        let mut bad = ok.clone();
        bad.segments[0].channel = None;
        assert_eq!(field_of(&bad).as_deref(), Some("segments[0].speaker"));
        let mut bad = ok.clone();
        bad.segments[1].channel = Some(2);
        assert_eq!(field_of(&bad).as_deref(), Some("segments[1].channel"));
        let mut bad = ok.clone();
        bad.segments[0].text = "nul\0".into();
        assert_eq!(field_of(&bad).as_deref(), Some("segments[0].text"));
        let mut bad = ok.clone();
        bad.segments[0].text = "x".repeat(MAX_SEGMENT_CHARS + 1);
        assert_eq!(field_of(&bad).as_deref(), Some("segments[0].text"));
        let mut bad = ok.clone();
        bad.segments[0].confidence = Some(1.5);
        assert_eq!(field_of(&bad).as_deref(), Some("segments[0].confidence"));
        let mut bad = ok.clone();
        bad.quality_score = Some(100.5);
        assert_eq!(field_of(&bad).as_deref(), Some("quality_score"));
        let mut bad = ok.clone();
        bad.sentiment = Some("happy".into());
        assert_eq!(field_of(&bad).as_deref(), Some("sentiment"));
        let mut bad = ok.clone();
        bad.tags.push("vip".into());
        assert_eq!(field_of(&bad).as_deref(), Some("tags[2]"));
        let mut bad = ok;
        bad.segments = vec![segment("a"); MAX_SEGMENTS + 1];
        assert_eq!(field_of(&bad).as_deref(), Some("segments"));
    }

    #[test]
    fn right_to_left_marks_are_transcript_text_but_not_a_tag() {
        let mut input = TranscriptInput {
            segments: vec![segment("\u{200F}שלום")],
            ..TranscriptInput::default()
        };
        assert_eq!(input.check(), Ok(()));
        input.tags = vec!["a\u{202E}b".into()];
        assert_eq!(field_of(&input).as_deref(), Some("tags[0]"));
    }

    #[test]
    fn search_words_drop_lone_punctuation_and_quote_fts_syntax() {
        assert_eq!(
            search_words("  refund  -- NEAR(x y) ").expect("words"),
            vec!["refund", "NEAR(x", "y)"]
        );
        assert_eq!(
            fts5_query(&["say\"hi".into(), "OR".into()]),
            "\"say\"\"hi\" \"OR\""
        );
        assert!(search_words(" ?! ").is_err());
        assert!(search_words(&"w ".repeat(MAX_QUERY_WORDS + 1)).is_err());
    }
}
