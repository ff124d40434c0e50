//! The tables of a run kept as Arrow record batches in memory, for callers
//! that hand them on without files (the Python package: polars reads them
//! through Arrow's C stream interface). The same tables and columns as
//! [`super::ParquetSink`] writes.

use super::columns::{ColumnSet, Row};
use super::{BcdStepRow, CellRow, DeviceRoundRow, DeviceRow, EventRow, LeftOutRow, RoundRow, TraceSink};
use crate::error::{Error, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// Rows per record batch.
const BATCH_ROWS: usize = 65_536;

/// One table: its column buffer and the batches filled so far.
pub struct Table {
    pub name: &'static str,
    set: Option<ColumnSet>,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    fn new<R: Row>(on: bool) -> Table {
        Table { name: R::TABLE, set: on.then(|| ColumnSet::new(&R::columns())), batches: Vec::new() }
    }

    fn push<R: Row>(&mut self, r: &R) -> Result<()> {
        let Some(set) = self.set.as_mut() else { return Ok(()) };
        r.push(set);
        if set.rows() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(set) = self.set.as_mut().filter(|s| s.rows() > 0) {
            self.batches.push(set.take_batch().map_err(Error::Trace)?);
        }
        Ok(())
    }

    /// Its schema; `None` for a table the run does not keep (`events`
    /// unless `run.events_trace`, `bcd_steps` unless `run.bcd_trace`).
    pub fn schema(&self) -> Option<SchemaRef> {
        self.set.as_ref().map(ColumnSet::schema)
    }
}

/// Keeps every table in memory; [`ArrowSink::tables`] once finished.
pub struct ArrowSink {
    tables: [Table; 7],
    finished: bool,
}

const CELLS: usize = 0;
const DEVICES: usize = 1;
const ROUNDS: usize = 2;
const DEVICE_ROUNDS: usize = 3;
const LEFT_OUT: usize = 4;
const BCD_STEPS: usize = 5;
const EVENTS: usize = 6;

impl ArrowSink {
    /// `events` and `bcd_steps`: whether those two optional tables are kept.
    pub fn new(events: bool, bcd_steps: bool) -> ArrowSink {
        ArrowSink {
            tables: [
                Table::new::<CellRow>(true),
                Table::new::<DeviceRow>(true),
                Table::new::<RoundRow>(true),
                Table::new::<DeviceRoundRow>(true),
                Table::new::<LeftOutRow>(true),
                Table::new::<BcdStepRow>(bcd_steps),
                Table::new::<EventRow>(events),
            ],
            finished: false,
        }
    }

    /// The tables kept, each whole; `None` until the run finished.
    pub fn tables(self) -> Option<Vec<Table>> {
        self.finished.then(|| self.tables.into_iter().filter(|t| t.set.is_some()).collect())
    }
}

impl TraceSink for ArrowSink {
    fn cell(&mut self, r: &CellRow) -> Result<()> {
        self.tables[CELLS].push(r)
    }
    fn device(&mut self, r: &DeviceRow) -> Result<()> {
        self.tables[DEVICES].push(r)
    }
    fn round(&mut self, r: &RoundRow) -> Result<()> {
        self.tables[ROUNDS].push(r)
    }
    fn device_round(&mut self, r: &DeviceRoundRow) -> Result<()> {
        self.tables[DEVICE_ROUNDS].push(r)
    }
    fn left_out(&mut self, r: &LeftOutRow) -> Result<()> {
        self.tables[LEFT_OUT].push(r)
    }
    fn bcd_step(&mut self, r: &BcdStepRow) -> Result<()> {
        self.tables[BCD_STEPS].push(r)
    }
    fn event(&mut self, r: &EventRow) -> Result<()> {
        self.tables[EVENTS].push(r)
    }
    fn finish(&mut self) -> Result<()> {
        for t in &mut self.tables {
            t.flush()?;
        }
        self.finished = true;
        Ok(())
    }
}
