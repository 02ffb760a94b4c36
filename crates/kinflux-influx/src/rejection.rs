//! Reading InfluxDB's error bodies back into refused line indexes.
//!
//! v1 (1.6.7, found by experiment): a 400 with `{"error": "..."}` where the text is
//! - `unable to parse 'LINE': reason` per bad line, joined by `\n`, prefixed with
//!   `partial write: ` and suffixed with ` dropped=0` when other lines were stored;
//! - `partial write: field type conflict: input field "F" on measurement "M" is type T,
//!   already exists as type E dropped=N`: only the first conflict is named, N counts all,
//!   and parse errors in the same body are not reported at all;
//! - `partial write: points beyond retention policy dropped=N` and similar, naming no line.
//!
//! 1.8 and later (1.13.2 and 2.7.12, recorded in docs/server-answers.md) append ` for
//! database: DB` (and ` for retention policy: RP`) after `dropped=N`, and word the retention
//! drop as `dropped N points outside retention policy of duration D - …`. 2.7 answers 400
//! with nothing stored for bad lines (no `partial write:`), 422 with the rest stored for
//! type conflicts and retention drops.
//!
//! v2: JSON `{code, message, line}`, where the message may be a v1 text or, from InfluxDB
//! 3 and Cloud, a list of `error parsing line N (1-based): reason`; v3: JSON `{error, data:
//! [{original_line, line_number, error_message}]}` (the tests cite the documentation pages).

use std::collections::{BTreeMap, HashMap};

use crate::LineBatch;
use crate::outcome::{RejectedLine, UnattributedDrop};
use crate::scan;

/// The lines a 4xx answer refused, in terms of the batch that was sent.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) rejected: Vec<RejectedLine>,
    pub(crate) unattributed: Option<UnattributedDrop>,
    /// The other lines may not be stored: send them again without the refused ones.
    pub(crate) resend_rest: bool,
}

const UNABLE_TO_PARSE: &str = "unable to parse '";
const PARTIAL_WRITE: &str = "partial write:";

/// The human message in an error body: the `error` or `message` JSON member, or the text.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["error", "message"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    if let Some(message) = cut_v1_error(body) {
        return message;
    }
    String::from_utf8_lossy(body).into_owned()
}

/// The message of a v1 `{"error":"..."}` body that was cut short (see the writer's
/// answer size limit): the JSON string up to the cut, unescaped.
fn cut_v1_error(body: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&body[..e.valid_up_to()]).ok()?,
    };
    let inner = text.strip_prefix(r#"{"error":""#)?;
    // The cut may fall inside an escape such as `\u00e9`: drop up to 6 bytes.
    (0..=6)
        .map(|cut| inner.len().saturating_sub(cut))
        .filter(|&end| inner.is_char_boundary(end))
        .find_map(|end| serde_json::from_str::<String>(&format!("\"{}\"", &inner[..end])).ok())
}

/// Reads a v1 error message. `None` when it names no line and reports no dropped points.
pub(crate) fn v1(message: &str, batch: &LineBatch) -> Option<Refusal> {
    let partial_at = message.find(PARTIAL_WRITE);
    let rest = match partial_at {
        Some(at) => message[at + PARTIAL_WRITE.len()..].trim_start(),
        None => message,
    };
    let (rest, dropped) = split_dropped(rest);
    if rest.contains(UNABLE_TO_PARSE) {
        let (rejected, unmatched) = parse_errors(rest, batch);
        // Nothing recognised in a body refused as a whole: report it as such.
        if rejected.is_empty() && (unmatched == 0 || partial_at.is_none()) {
            return None;
        }
        let unattributed = (unmatched > 0).then(|| UnattributedDrop {
            count: unmatched,
            reason: format!("{unmatched} unparsable line(s) not found in the batch"),
        });
        return Some(Refusal {
            rejected,
            unattributed: unattributed.or_else(|| leftover(dropped, 0, rest)),
            resend_rest: false,
        });
    }
    if let Some(conflict) = rest.strip_prefix("field type conflict: ") {
        let rejected = type_conflicts(conflict, rest, batch);
        let attributed = rejected.len();
        return Some(Refusal {
            unattributed: leftover(dropped, attributed, rest),
            // Only the first conflict is named and parse errors are hidden: what is left
            // must be sent again to learn about it.
            resend_rest: attributed > 0,
            rejected,
        });
    }
    if partial_at.is_some() {
        return Some(Refusal {
            rejected: Vec::new(),
            unattributed: leftover(dropped, 0, rest),
            resend_rest: false,
        });
    }
    None
}

/// Reads a v2 error body: `{code, message, line}` (line 1-based, optional).
pub(crate) fn v2(body: &[u8], batch: &LineBatch) -> Option<Refusal> {
    #[derive(serde::Deserialize)]
    struct V2Error {
        #[serde(default)]
        message: String,
        #[serde(default)]
        line: Option<u64>,
    }
    let parsed: V2Error = serde_json::from_slice(body).ok()?;
    let mut refusal = v1(&parsed.message, batch).unwrap_or_default();
    for (index, reason) in numbered_line_errors(&parsed.message, batch) {
        if !refusal.rejected.iter().any(|r| r.index == index) {
            refusal.rejected.push(RejectedLine { index, reason });
        }
    }
    refusal.rejected.sort_by_key(|r| r.index);
    if let Some(line) = parsed.line {
        if let Some(index) = line_number_index(line, batch) {
            if !refusal.rejected.iter().any(|r| r.index == index) {
                refusal.rejected.push(RejectedLine {
                    index,
                    reason: parsed.message.clone(),
                });
                refusal.rejected.sort_by_key(|r| r.index);
            }
        }
    }
    if refusal.rejected.is_empty() && refusal.unattributed.is_none() {
        return None;
    }
    // InfluxDB OSS 2.x refuses the whole body for its first bad line; Cloud stores the
    // rest. Sending the rest again is safe either way (same series key and time).
    refusal.resend_rest = !refusal.rejected.is_empty();
    Some(refusal)
}

/// Reads a v3 error body: `{error, data}` where data is a list of `{original_line,
/// line_number, error_message}` (partial write accepted), or one such object (the whole
/// body was refused because of it, `accept_partial=false`).
pub(crate) fn v3(body: &[u8], batch: &LineBatch) -> Option<Refusal> {
    #[derive(serde::Deserialize)]
    struct LineError {
        line_number: u64,
        #[serde(default)]
        error_message: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Data {
        Many(Vec<LineError>),
        One(LineError),
    }
    #[derive(serde::Deserialize)]
    struct V3Error {
        data: Data,
    }
    let parsed: V3Error = serde_json::from_slice(body).ok()?;
    let (errors, whole_body_refused) = match parsed.data {
        Data::Many(errors) => (errors, false),
        Data::One(error) => (vec![error], true),
    };
    let mut by_index = BTreeMap::new();
    for e in errors {
        if let Some(index) = line_number_index(e.line_number, batch) {
            by_index.entry(index).or_insert(e.error_message);
        }
    }
    if by_index.is_empty() {
        return None;
    }
    Some(Refusal {
        rejected: by_index
            .into_iter()
            .map(|(index, reason)| RejectedLine { index, reason })
            .collect(),
        unattributed: None,
        resend_rest: whole_body_refused,
    })
}

/// InfluxDB 3 / Cloud's v2 message lists each refused line as
/// `error parsing line N (1-based): reason`, one per `\n`.
fn numbered_line_errors(message: &str, batch: &LineBatch) -> Vec<(usize, String)> {
    const PREFIX: &str = "error parsing line ";
    let mut found = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find(PREFIX) {
        rest = &rest[at + PREFIX.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(number) = rest[..digits].parse::<u64>() else {
            continue;
        };
        let Some(after) = rest[digits..].strip_prefix(" (1-based): ") else {
            continue;
        };
        let reason = after.split('\n').next().unwrap_or_default().trim_end();
        if let Some(index) = line_number_index(number, batch) {
            found.push((index, reason.to_owned()));
        }
    }
    found
}

fn line_number_index(line_number: u64, batch: &LineBatch) -> Option<usize> {
    let index = usize::try_from(line_number).ok()?.checked_sub(1)?;
    (index < batch.len()).then_some(index)
}

/// Splits a trailing ` dropped=N` off, with what 1.8 and later append to it: ` for
/// database: DB` and ` for retention policy: RP` (1.13.2 and 2.7.12, recorded in
/// docs/server-answers.md).
fn split_dropped(message: &str) -> (&str, Option<usize>) {
    const DROPPED: &str = " dropped=";
    let mut end = message.len();
    while let Some(at) = message[..end].rfind(DROPPED) {
        let after = &message[at + DROPPED.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let tail = after[digits..].trim_end();
        if digits > 0 && (tail.is_empty() || tail.starts_with(" for database: ")) {
            if let Ok(n) = after[..digits].parse() {
                return (&message[..at], Some(n));
            }
        }
        end = at;
    }
    (message, None)
}

fn leftover(dropped: Option<usize>, attributed: usize, reason: &str) -> Option<UnattributedDrop> {
    let count = dropped?.checked_sub(attributed).filter(|n| *n > 0)?;
    Some(UnattributedDrop {
        count,
        reason: reason.to_owned(),
    })
}

/// Maps each `unable to parse 'LINE': reason` back to the lines with that text; also
/// returns how many such errors named no line of the batch.
fn parse_errors(message: &str, batch: &LineBatch) -> (Vec<RejectedLine>, usize) {
    let mut by_text: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, line) in batch.lines().enumerate() {
        by_text.entry(line.trim_ascii()).or_default().push(i);
    }
    let mut rejected = BTreeMap::new();
    let mut unmatched = 0;
    let mut cursor = 0;
    while let Some(found) = message[cursor..].find(UNABLE_TO_PARSE) {
        let text_start = cursor + found + UNABLE_TO_PARSE.len();
        cursor = text_start;
        unmatched += 1;
        // The line itself may contain `': `; try each candidate end until one is a line.
        let mut search = text_start;
        while let Some(end) = message[search..].find("': ") {
            let end = search + end;
            let indexes = lines_with_text(&by_text, batch, &message.as_bytes()[text_start..end]);
            if !indexes.is_empty() {
                let reason_start = end + 3;
                let reason_end = message[reason_start..]
                    .find(&format!("\n{UNABLE_TO_PARSE}"))
                    .map_or(message.len(), |n| reason_start + n);
                let reason = &message[reason_start..reason_end];
                for i in indexes {
                    rejected.entry(i).or_insert_with(|| reason.to_owned());
                }
                unmatched -= 1;
                cursor = reason_end;
                break;
            }
            search = end + 1;
        }
    }
    let rejected = rejected
        .into_iter()
        .map(|(index, reason)| RejectedLine { index, reason })
        .collect();
    (rejected, unmatched)
}

/// The indexes of the lines whose text is `text`. InfluxDB reads a quote left open as
/// running over the next `\n`, so `text` may also be several consecutive lines: then all
/// of them.
fn lines_with_text(
    by_text: &HashMap<&[u8], Vec<usize>>,
    batch: &LineBatch,
    text: &[u8],
) -> Vec<usize> {
    if let Some(indexes) = by_text.get(text) {
        return indexes.clone();
    }
    let mut parts = text.split(|b| *b == b'\n');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let rest: Vec<&[u8]> = parts.collect();
    if rest.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for &start in by_text
        .get(first.trim_ascii())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let follows = rest.iter().enumerate().all(|(k, part)| {
            batch.line(start + 1 + k).map(<[u8]>::trim_ascii) == Some(part.trim_ascii())
        });
        if follows {
            found.extend(start..=start + rest.len());
        }
    }
    found
}

/// Finds the lines a `field type conflict` message refers to: same measurement, the named
/// field, with a type other than the one that already exists.
fn type_conflicts(conflict: &str, reason: &str, batch: &LineBatch) -> Vec<RejectedLine> {
    let Some(rest) = conflict.strip_prefix("input field ") else {
        return Vec::new();
    };
    let Some((field, rest)) = go_quoted(rest) else {
        return Vec::new();
    };
    let Some(rest) = rest.strip_prefix(" on measurement ") else {
        return Vec::new();
    };
    let Some((measurement, rest)) = go_quoted(rest) else {
        return Vec::new();
    };
    let Some(existing) = rest.rsplit("already exists as type ").next() else {
        return Vec::new();
    };
    let existing = existing.trim();
    let mut rejected = Vec::new();
    for (index, line) in batch.lines().enumerate() {
        let Some((m, fields)) = scan::measurement_and_field_types(line) else {
            continue;
        };
        if m != measurement.as_bytes() {
            continue;
        }
        let conflicting = fields
            .iter()
            .any(|(key, kind)| key == field.as_bytes() && *kind != existing);
        if conflicting {
            rejected.push(RejectedLine {
                index,
                reason: reason.to_owned(),
            });
        }
    }
    rejected
}

/// Reads a Go `%q` string at the start of `s`; returns it and what follows.
fn go_quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(refusal: &Refusal) -> Vec<usize> {
        refusal.rejected.iter().map(|r| r.index).collect()
    }

    #[test]
    fn v1_parse_errors_map_to_line_indexes() {
        // Body returned by InfluxDB 1.6.7 for this batch (recorded by experiment).
        let batch = LineBatch::from_lines([
            "cpu value=1 1",
            "cpu value= 2",
            "cpu value=3 3",
            "mem,host=a x=1i 4",
            "bad line here",
        ]);
        let msg = error_message(br#"{"error":"partial write: unable to parse 'cpu value= 2': missing field value\nunable to parse 'bad line here': invalid field format dropped=0"}"#);
        let refusal = v1(&msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1, 4]);
        assert_eq!(refusal.rejected[0].reason, "missing field value");
        assert_eq!(refusal.rejected[1].reason, "invalid field format");
        assert_eq!(refusal.unattributed, None);
        assert!(!refusal.resend_rest);
    }

    #[test]
    fn v1_whole_body_parse_error_rejects_the_named_lines() {
        let batch = LineBatch::from_lines(["garbage"]);
        let refusal = v1("unable to parse 'garbage': missing fields", &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![0]);
    }

    #[test]
    fn v1_line_containing_quote_colon_is_still_found() {
        let batch = LineBatch::from_lines(["ok v=1", r#"m s="a': b",x"#]);
        let msg =
            r#"partial write: unable to parse 'm s="a': b",x': invalid field format dropped=0"#;
        let refusal = v1(msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1]);
        assert_eq!(refusal.rejected[0].reason, "invalid field format");
    }

    #[test]
    fn v1_type_conflict_finds_every_conflicting_line_and_asks_to_resend() {
        // InfluxDB 1.6.7 after `cpu value=1` (float) was stored.
        let batch = LineBatch::from_lines([
            "cpu value=1i 10",
            "cpu value=5 11",
            r#"cpu,host=x value="s" 12"#,
        ]);
        let msg = r#"partial write: field type conflict: input field "value" on measurement "cpu" is type integer, already exists as type float dropped=2"#;
        let refusal = v1(msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![0, 2]);
        assert!(
            refusal.rejected[0]
                .reason
                .starts_with("field type conflict")
        );
        assert_eq!(refusal.unattributed, None);
        assert!(refusal.resend_rest);
    }

    #[test]
    fn v1_open_quote_spanning_lines_rejects_each_of_them() {
        // InfluxDB 1.6.7 reads the open quote across the newline (recorded by experiment).
        let batch = LineBatch::from_lines([
            "m v=1 1",
            r#"m v="unterminated 2"#,
            r"m,t=a\ b v=1 3 4",
            "m v=5 5",
        ]);
        let msg = "partial write: unable to parse 'm v=\"unterminated 2\nm,t=a\\ b v=1 3 4': unbalanced quotes dropped=0";
        let refusal = v1(msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1, 2]);
        assert_eq!(refusal.rejected[1].reason, "unbalanced quotes");
    }

    #[test]
    fn v1_unparsable_line_not_in_the_batch_is_counted_unattributed() {
        let batch = LineBatch::from_lines(["m v=1 1", "m v= 2"]);
        let msg = "partial write: unable to parse 'm v= 2': missing field value\nunable to parse 'other': missing fields dropped=0";
        let refusal = v1(msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1]);
        assert_eq!(refusal.unattributed.unwrap().count, 1);
        assert_eq!(v1("unable to parse 'other': missing fields", &batch), None);
    }

    #[test]
    fn v1_retention_drop_is_unattributed() {
        let batch = LineBatch::from_lines(["cpu v=1 1", "cpu v=1 2"]);
        let refusal = v1(
            "partial write: points beyond retention policy dropped=1",
            &batch,
        )
        .unwrap();
        assert!(refusal.rejected.is_empty());
        let drop = refusal.unattributed.unwrap();
        assert_eq!(drop.count, 1);
        assert_eq!(drop.reason, "points beyond retention policy");
    }

    #[test]
    fn v1_13_suffix_after_dropped_is_not_part_of_a_reason() {
        // InfluxDB 1.13.2, recorded in docs/server-answers.md.
        let batch = LineBatch::from_lines(["gbg v=1 1", "gbg v= 2", "gbg v=3 3"]);
        let msg = error_message(
            br#"{"error":"partial write: unable to parse 'gbg v= 2': missing field value dropped=0 for database: kinflux_answers"}"#,
        );
        let refusal = v1(&msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1]);
        assert_eq!(refusal.rejected[0].reason, "missing field value");
        assert_eq!(refusal.unattributed, None);

        let batch = LineBatch::from_lines([r#"tc v="s" 1"#, "tc v=2i 2"]);
        let msg = r#"partial write: field type conflict: input field "v" on measurement "tc" is type string, already exists as type integer dropped=1 for database: db for retention policy: autogen"#;
        let refusal = v1(msg, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![0]);
        assert!(!refusal.rejected[0].reason.contains("for database"));
        assert_eq!(refusal.unattributed, None);
    }

    #[test]
    fn v1_13_retention_drop_is_counted_not_written() {
        let batch = LineBatch::from_lines(["old v=1 3", "old v=2 1", "old v=3 2"]);
        let msg = "partial write: dropped 1 points outside retention policy of duration 1h0m0s - oldest point old at 2001-09-09T01:46:40Z dropped because it violates a Retention Policy Lower Bound at 2026-12-02T06:38:26.886690111Z, newest point old at 2001-09-09T01:46:40Z dropped because it violates a Retention Policy Lower Bound at 2026-12-02T06:38:26.886690111Z dropped=1 for database: kinflux_answers for retention policy: short";
        let refusal = v1(msg, &batch).unwrap();
        assert!(refusal.rejected.is_empty());
        let drop = refusal.unattributed.unwrap();
        assert_eq!(drop.count, 1);
        assert!(
            drop.reason
                .starts_with("dropped 1 points outside retention policy")
        );
        assert!(!refusal.resend_rest);
    }

    #[test]
    fn v2_7_answers_map_to_refusals() {
        // InfluxDB 2.7.12, recorded in docs/server-answers.md. A bad line: 400, nothing
        // stored, so the rest must be sent again.
        let batch = LineBatch::from_lines(["gbg v=1 1", "gbg v= 2", "gbg v=3 3"]);
        let body =
            br#"{"code":"invalid","message":"unable to parse 'gbg v= 2': missing field value"}"#;
        let refusal = v2(body, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1]);
        assert!(refusal.resend_rest);
        // A type conflict: 422, the rest stored.
        let batch = LineBatch::from_lines(["tc v=2i 3", r#"tc v="s" 4"#, "tc v=5i 5"]);
        let body = br#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: field type conflict: input field \"v\" on measurement \"tc\" is type string, already exists as type integer dropped=1"}"#;
        let refusal = v2(body, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1]);
        assert_eq!(refusal.unattributed, None);
        // A retention drop: 422, the rest stored, the dropped point counted.
        let batch = LineBatch::from_lines(["old v=1 3", "old v=2 1", "old v=3 2"]);
        let body = br#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: dropped 1 points outside retention policy of duration 1h0m0s - oldest point old at 2001-09-09T01:46:40Z dropped because it violates a Retention Policy Lower Bound at 2026-12-02T06:30:34.640099899Z, newest point old at 2001-09-09T01:46:40Z dropped because it violates a Retention Policy Lower Bound at 2026-12-02T06:30:34.640099899Z dropped=1 for database: a0d2b7765287dc47 for retention policy: autogen"}"#;
        let refusal = v2(body, &batch).unwrap();
        assert!(refusal.rejected.is_empty());
        assert_eq!(refusal.unattributed.unwrap().count, 1);
        assert!(!refusal.resend_rest);
    }

    #[test]
    fn v1_unrelated_message_is_not_a_refusal() {
        let batch = LineBatch::from_lines(["cpu v=1 1"]);
        assert_eq!(v1("invalid precision \"x\"", &batch), None);
    }

    #[test]
    fn arbitrary_messages_and_bodies_never_panic() {
        let pieces = [
            "partial write:",
            "unable to parse '",
            "': ",
            "'",
            "\n",
            " dropped=",
            "7",
            "field type conflict: input field ",
            "\"v\"",
            " on measurement ",
            "\"m",
            "already exists as type ",
            "float",
            "m v=1",
            "{\"data\":",
            "[",
            "]",
            "{",
            "}",
            "\"line_number\":",
            "0",
            "18446744073709551615",
            ",",
            "\"line\":",
            "é",
        ];
        let batch = LineBatch::from_lines(["m v=1", "m v=1i 2", "m,t=\"x v=\"", ""]);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let n = rng.usize(0..12);
            let text: String = (0..n).map(|_| pieces[rng.usize(0..pieces.len())]).collect();
            let _ = v1(&text, &batch);
            let _ = v2(text.as_bytes(), &batch);
            let _ = v3(text.as_bytes(), &batch);
            let _ = error_message(text.as_bytes());
            let _ = scan::measurement_and_field_types(text.as_bytes());
        }
    }

    #[test]
    fn v2_numbered_line_errors_name_every_line() {
        // https://docs.influxdata.com/influxdb3/cloud-dedicated/write-data/troubleshoot/
        let body = br#"{"code":"invalid","line":2,"message":"failed to parse line protocol: errors encountered on line(s):\nerror parsing line 2 (1-based): Invalid measurement was provided\nerror parsing line 4 (1-based): Unable to parse timestamp value '123461000000000000000000000000'"}"#;
        let batch = LineBatch::from_lines([
            "a v=1",
            ",bad v=1",
            "c v=1",
            "d v=1 123461000000000000000000000000",
        ]);
        let refusal = v2(body, &batch).unwrap();
        assert_eq!(indexes(&refusal), vec![1, 3]);
        assert_eq!(
            refusal.rejected[0].reason,
            "Invalid measurement was provided"
        );
        assert!(
            refusal.rejected[1]
                .reason
                .starts_with("Unable to parse timestamp")
        );
        assert!(refusal.resend_rest);
    }

    #[test]
    fn a_cut_v1_error_body_is_still_read() {
        let full = br#"{"error":"partial write: unable to parse 'm v=\"x': bad\nunable to parse 'n v=\"y': bad"}"#;
        for cut in 55..full.len() {
            let message = error_message(&full[..cut]);
            assert!(
                message.starts_with("partial write: unable to parse 'm v=\"x'"),
                "{cut}: {message}"
            );
        }
    }

    #[test]
    fn go_quoted_unescapes() {
        assert_eq!(
            go_quoted(r#""a\"b\\c" tail"#),
            Some((r#"a"b\c"#.to_owned(), " tail"))
        );
        assert_eq!(go_quoted("no quote"), None);
    }
}
