//! Writing points rather than encoded lines (feature `points`).

use kinflux_series::PointView;

use crate::outcome::{PartialWrite, RejectedLine};
use crate::{LineBatch, WriteError, WriteOutcome, Writer};

impl Writer {
    /// Encodes `points` as line protocol in the writer's precision (with
    /// `kinflux_line::encode_point`) and writes them like [`Writer::write`].
    ///
    /// Indexes in the outcome are indexes into `points`. A point the encoder refuses (a
    /// NaN field, a name line protocol cannot carry) is not sent and is reported as
    /// refused with the encoder's reason; the writer's counters only count what was sent.
    pub async fn write_points<P: PointView>(
        &self,
        points: &[P],
    ) -> Result<WriteOutcome, WriteError> {
        let precision = self.config().precision;
        let mut body = Vec::with_capacity(points.len() * 64);
        let mut starts = Vec::with_capacity(points.len());
        // The index in `points` of each encoded line.
        let mut sent = Vec::with_capacity(points.len());
        let mut rejected = Vec::new();
        for (index, point) in points.iter().enumerate() {
            let start = body.len();
            match kinflux_line::encode_point(point, precision, &mut body) {
                Ok(()) => {
                    starts.push(start);
                    sent.push(index);
                }
                Err(e) => rejected.push(RejectedLine {
                    index,
                    reason: format!("cannot encode: {e}"),
                }),
            }
        }
        let mut unattributed = None;
        if !sent.is_empty() {
            let outcome = self
                .write(LineBatch::with_line_starts(body, starts))
                .await?;
            if let WriteOutcome::Partial(partial) = outcome {
                rejected.extend(partial.rejected.into_iter().map(|line| RejectedLine {
                    index: sent[line.index],
                    reason: line.reason,
                }));
                unattributed = partial.unattributed;
            }
        }
        if rejected.is_empty() && unattributed.is_none() {
            return Ok(WriteOutcome::Written {
                lines: points.len(),
            });
        }
        rejected.sort_by_key(|line| line.index);
        Ok(WriteOutcome::Partial(PartialWrite {
            lines: points.len(),
            rejected,
            unattributed,
        }))
    }
}
