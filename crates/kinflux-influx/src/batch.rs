//! Line-protocol bodies with their line boundaries.

use bytes::Bytes;

/// An already-encoded line-protocol body: `\n`-terminated lines in one buffer, plus where
/// each line starts.
///
/// Line indexes (0-based, in body order) are how the writer reports rejected lines, so
/// the caller can map them back to its source records. Every `\n`-separated segment is a
/// line, empty ones included; a final line without `\n` counts too.
#[derive(Clone, PartialEq, Eq)]
pub struct LineBatch {
    body: Bytes,
    /// Start offset of each line; line `i` ends before `starts[i + 1]` (or the body end).
    starts: Vec<usize>,
}

/// Sizes only: a body can be megabytes.
impl std::fmt::Debug for LineBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineBatch")
            .field("lines", &self.len())
            .field("bytes", &self.byte_len())
            .finish()
    }
}

impl LineBatch {
    /// Wraps a body and finds its line boundaries (one pass over the bytes).
    pub fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let mut starts = Vec::with_capacity(body.len() / 64 + 1);
        if !body.is_empty() {
            starts.push(0);
            starts.extend(
                memchr::memchr_iter(b'\n', &body)
                    .map(|i| i + 1)
                    .filter(|&start| start < body.len()),
            );
        }
        LineBatch { body, starts }
    }

    /// Wraps a body whose line starts the caller already knows (the batcher does), so the
    /// body is not scanned again. `starts` must begin at 0 and increase; otherwise the
    /// body is scanned instead.
    pub fn with_line_starts(body: impl Into<Bytes>, starts: Vec<usize>) -> Self {
        let body = body.into();
        let valid = match starts.first() {
            None => body.is_empty(),
            Some(&first) => {
                first == 0
                    && starts.windows(2).all(|w| w[0] < w[1])
                    && starts.last().is_some_and(|&last| last < body.len())
            }
        };
        if valid {
            LineBatch { body, starts }
        } else {
            LineBatch::new(body)
        }
    }

    /// Builds a batch from lines given without their `\n` (convenient in tests).
    pub fn from_lines<I, L>(lines: I) -> Self
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut body = Vec::new();
        let mut starts = Vec::new();
        for line in lines {
            starts.push(body.len());
            body.extend_from_slice(line.as_ref());
            body.push(b'\n');
        }
        LineBatch {
            body: Bytes::from(body),
            starts,
        }
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The whole body as sent (before compression).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body size in bytes.
    pub fn byte_len(&self) -> usize {
        self.body.len()
    }

    /// Line `index` without its trailing `\n`, or `None` past the end.
    pub fn line(&self, index: usize) -> Option<&[u8]> {
        let (start, end) = self.span(index)?;
        let line = &self.body[start..end];
        Some(line.strip_suffix(b"\n").unwrap_or(line))
    }

    /// Iterates over the lines, without their `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(|i| self.line(i))
    }

    fn span(&self, index: usize) -> Option<(usize, usize)> {
        let start = *self.starts.get(index)?;
        let end = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.body.len());
        Some((start, end))
    }

    /// Lines `from..to` as a batch sharing this body (no copy).
    pub(crate) fn slice(&self, from: usize, to: usize) -> LineBatch {
        let to = to.min(self.len());
        if from >= to {
            return LineBatch::new(Bytes::new());
        }
        let start = self.starts[from];
        let end = self.starts.get(to).copied().unwrap_or(self.body.len());
        LineBatch {
            body: self.body.slice(start..end),
            starts: self.starts[from..to].iter().map(|s| s - start).collect(),
        }
    }

    /// A new batch holding only the lines whose index `keep` accepts, in order. Copies the
    /// kept lines (only used on the error path, to resend what is left of a batch).
    pub(crate) fn select(&self, mut keep: impl FnMut(usize) -> bool) -> LineBatch {
        let mut body = Vec::with_capacity(self.body.len());
        let mut starts = Vec::new();
        for i in 0..self.len() {
            if keep(i) {
                if let Some((start, end)) = self.span(i) {
                    starts.push(body.len());
                    body.extend_from_slice(&self.body[start..end]);
                    if body.last() != Some(&b'\n') {
                        body.push(b'\n');
                    }
                }
            }
        }
        LineBatch {
            body: Bytes::from(body),
            starts,
        }
    }

    /// Splits into runs of whole lines of at most `max_bytes` each (a single longer line
    /// forms a run of its own). Returns `(first line index, run)` pairs.
    pub(crate) fn split_by_size(&self, max_bytes: usize) -> Vec<(usize, LineBatch)> {
        if self.body.len() <= max_bytes || self.len() <= 1 {
            return vec![(0, self.clone())];
        }
        let mut runs = Vec::new();
        let mut first = 0;
        let mut run_start = 0;
        for i in 1..=self.len() {
            let end = self.starts.get(i).copied().unwrap_or(self.body.len());
            let next_end = self.starts.get(i + 1).copied().unwrap_or(self.body.len());
            let run_bytes = end - run_start;
            let would_be = next_end - run_start;
            if i == self.len() || (run_bytes > 0 && would_be > max_bytes) {
                runs.push((first, self.slice(first, i)));
                first = i;
                run_start = end;
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_with_and_without_final_newline() {
        assert_eq!(LineBatch::new("a v=1\nb v=2\n").len(), 2);
        assert_eq!(LineBatch::new("a v=1\nb v=2").len(), 2);
        assert_eq!(LineBatch::new("").len(), 0);
        let b = LineBatch::new("a v=1\n\nb v=2\n");
        assert_eq!(b.len(), 3);
        assert_eq!(b.line(1), Some(&b""[..]));
        assert_eq!(b.line(2), Some(&b"b v=2"[..]));
        assert_eq!(b.line(3), None);
    }

    #[test]
    fn with_line_starts_falls_back_to_scanning_on_bad_offsets() {
        let good = LineBatch::with_line_starts("a v=1\nb v=2\n", vec![0, 6]);
        assert_eq!(good.line(1), Some(&b"b v=2"[..]));
        let bad = LineBatch::with_line_starts("a v=1\nb v=2\n", vec![3, 1]);
        assert_eq!(bad, LineBatch::new("a v=1\nb v=2\n"));
    }

    #[test]
    fn split_by_size_keeps_whole_lines_and_order() {
        let lines: Vec<String> = (0..10).map(|i| format!("m v={i}")).collect();
        let batch = LineBatch::from_lines(&lines);
        let runs = batch.split_by_size(20);
        let mut seen = Vec::new();
        for (first, run) in &runs {
            assert!(run.byte_len() <= 20, "run of {} bytes", run.byte_len());
            for (k, line) in run.lines().enumerate() {
                assert_eq!(line, lines[first + k].as_bytes());
                seen.push(first + k);
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(runs.len() >= 4);
    }

    #[test]
    fn split_by_size_gives_an_oversized_line_its_own_run() {
        let batch = LineBatch::from_lines(["a v=1", "long_measurement value=123456789", "b v=2"]);
        let runs = batch.split_by_size(10);
        let firsts: Vec<usize> = runs.iter().map(|(f, _)| *f).collect();
        assert_eq!(firsts, vec![0, 1, 2]);
        assert_eq!(
            runs[1].1.line(0),
            Some(&b"long_measurement value=123456789"[..])
        );
    }

    #[test]
    fn debug_shows_sizes_not_the_body() {
        let batch = LineBatch::from_lines(["secret_measurement v=1"]);
        assert_eq!(format!("{batch:?}"), "LineBatch { lines: 1, bytes: 23 }");
    }

    #[test]
    fn select_keeps_chosen_lines() {
        let batch = LineBatch::new("a v=1\nb v=2\nc v=3");
        let kept = batch.select(|i| i != 1);
        assert_eq!(kept.body().as_ref(), b"a v=1\nc v=3\n");
        assert_eq!(kept.len(), 2);
    }
}
