//! The Parquet sink (arrow-rs). Rows are buffered per table and written as
//! one row group per `row_group_rows`, so memory stays bounded whatever the
//! number of rounds. With more than one thread, encoding and compression
//! run on a writer thread fed through a bounded channel; the bytes written
//! are the same either way.

use super::columns::{ColumnSet, Row};
use super::{BcdStepRow, CellRow, DeviceRoundRow, DeviceRow, EventRow, LeftOutRow, RoundRow, TraceSink};
use crate::error::{Error, Result};
use arrow_array::RecordBatch;
use crossbeam_channel::{Sender, bounded};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

const TABLES: usize = 7;

struct Writers {
    files: Vec<Option<ArrowWriter<File>>>,
}

impl Writers {
    fn write(&mut self, table: usize, batch: &RecordBatch) -> Result<()> {
        let w = self.files[table].as_mut().ok_or_else(|| Error::Trace("table not open".into()))?;
        w.write(batch).map_err(|e| Error::Trace(e.to_string()))?;
        w.flush().map_err(|e| Error::Trace(e.to_string()))
    }

    fn close(&mut self) -> Result<()> {
        for w in self.files.iter_mut().filter_map(Option::take) {
            w.close().map_err(|e| Error::Trace(e.to_string()))?;
        }
        Ok(())
    }
}

enum Backend {
    Inline(Writers),
    Thread { tx: Option<Sender<(usize, RecordBatch)>>, handle: Option<JoinHandle<Result<()>>> },
}

/// Writes `devices`, `rounds`, `device_rounds`, `cells`, `left_out` and
/// optionally `events` and `bcd_steps`
/// as `<table>.parquet` in a folder.
pub struct ParquetSink {
    sets: Vec<Option<ColumnSet>>,
    row_group_rows: usize,
    backend: Backend,
    dir: PathBuf,
}

impl ParquetSink {
    pub fn create(
        dir: &Path,
        events: bool,
        bcd_steps: bool,
        row_group_rows: usize,
        threads: usize,
    ) -> Result<ParquetSink> {
        let specs: [(&str, Vec<_>, bool); TABLES] = [
            (DeviceRow::TABLE, DeviceRow::columns(), true),
            (RoundRow::TABLE, RoundRow::columns(), true),
            (DeviceRoundRow::TABLE, DeviceRoundRow::columns(), true),
            (EventRow::TABLE, EventRow::columns(), events),
            (CellRow::TABLE, CellRow::columns(), true),
            (LeftOutRow::TABLE, LeftOutRow::columns(), true),
            (BcdStepRow::TABLE, BcdStepRow::columns(), bcd_steps),
        ];
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(row_group_rows)
            .set_created_by(format!("sflam {}", env!("CARGO_PKG_VERSION")))
            .build();
        let mut sets = Vec::new();
        let mut files = Vec::new();
        for (name, cols, on) in specs {
            if !on {
                sets.push(None);
                files.push(None);
                continue;
            }
            let set = ColumnSet::new(&cols);
            let path = dir.join(format!("{name}.parquet"));
            let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
            let w =
                ArrowWriter::try_new(f, set.schema(), Some(props.clone())).map_err(|e| Error::Trace(e.to_string()))?;
            sets.push(Some(set));
            files.push(Some(w));
        }
        let mut writers = Writers { files };
        let backend = if threads == 1 {
            Backend::Inline(writers)
        } else {
            let (tx, rx) = bounded::<(usize, RecordBatch)>(8);
            let handle = std::thread::Builder::new()
                .name("sflam-trace".into())
                .spawn(move || -> Result<()> {
                    for (t, b) in rx {
                        writers.write(t, &b)?;
                    }
                    writers.close()
                })
                .map_err(|e| Error::Trace(format!("cannot start the writer thread: {e}")))?;
            Backend::Thread { tx: Some(tx), handle: Some(handle) }
        };
        Ok(ParquetSink { sets, row_group_rows, backend, dir: dir.to_path_buf() })
    }

    fn push<R: Row>(&mut self, table: usize, r: &R) -> Result<()> {
        let Some(set) = self.sets[table].as_mut() else {
            return Ok(());
        };
        r.push(set);
        if set.rows() >= self.row_group_rows {
            self.flush(table)?;
        }
        Ok(())
    }

    fn flush(&mut self, table: usize) -> Result<()> {
        let Some(set) = self.sets[table].as_mut() else {
            return Ok(());
        };
        if set.rows() == 0 {
            return Ok(());
        }
        let batch = set.take_batch().map_err(Error::Trace)?;
        match &mut self.backend {
            Backend::Inline(w) => w.write(table, &batch),
            Backend::Thread { tx, handle } => {
                let sent = tx.as_ref().map(|t| t.send((table, batch)).is_ok()).unwrap_or(false);
                if sent {
                    Ok(())
                } else {
                    // The writer stopped: surface its error.
                    tx.take();
                    match handle.take().map(|h| h.join()) {
                        Some(Ok(Err(e))) => Err(e),
                        _ => Err(Error::Trace(format!("writer thread for {} stopped", self.dir.display()))),
                    }
                }
            }
        }
    }
}

impl TraceSink for ParquetSink {
    fn device(&mut self, r: &DeviceRow) -> Result<()> {
        self.push(0, r)
    }
    fn round(&mut self, r: &RoundRow) -> Result<()> {
        self.push(1, r)
    }
    fn device_round(&mut self, r: &DeviceRoundRow) -> Result<()> {
        self.push(2, r)
    }
    fn event(&mut self, r: &EventRow) -> Result<()> {
        self.push(3, r)
    }
    fn cell(&mut self, r: &CellRow) -> Result<()> {
        self.push(4, r)
    }
    fn left_out(&mut self, r: &LeftOutRow) -> Result<()> {
        self.push(5, r)
    }
    fn bcd_step(&mut self, r: &BcdStepRow) -> Result<()> {
        self.push(6, r)
    }
    fn finish(&mut self) -> Result<()> {
        for t in 0..TABLES {
            self.flush(t)?;
        }
        match &mut self.backend {
            Backend::Inline(w) => w.close(),
            Backend::Thread { tx, handle } => {
                tx.take();
                match handle.take().map(|h| h.join()) {
                    Some(Ok(r)) => r,
                    Some(Err(_)) => Err(Error::Trace("writer thread panicked".into())),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One table written to one Parquet file as rows arrive, for runs outside
/// the simulation (`sflam train`). The file is `<path>.partial` until
/// [`TableFile::finish`] renames it, so a killed run leaves no whole-looking file.
pub struct TableFile<R: Row> {
    set: ColumnSet,
    writer: Option<ArrowWriter<File>>,
    path: PathBuf,
    _row: std::marker::PhantomData<R>,
}

impl<R: Row> TableFile<R> {
    pub fn create(dir: &Path) -> Result<TableFile<R>> {
        let set = ColumnSet::new(&R::columns());
        let path = dir.join(format!("{}.parquet", R::TABLE));
        let partial = path.with_extension("parquet.partial");
        let f = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("sflam {}", env!("CARGO_PKG_VERSION")))
            .build();
        let w = ArrowWriter::try_new(f, set.schema(), Some(props)).map_err(|e| Error::Trace(e.to_string()))?;
        Ok(TableFile { set, writer: Some(w), path, _row: std::marker::PhantomData })
    }

    /// Appends a row and writes it through (these tables are small and a
    /// long training run should lose nothing but the partial row group).
    pub fn push(&mut self, r: &R) -> Result<()> {
        r.push(&mut self.set);
        let batch = self.set.take_batch().map_err(Error::Trace)?;
        let w = self.writer.as_mut().ok_or_else(|| Error::Trace("table already finished".into()))?;
        w.write(&batch).map_err(|e| Error::Trace(e.to_string()))?;
        w.flush().map_err(|e| Error::Trace(e.to_string()))
    }

    /// Closes the file and gives it its final name.
    pub fn finish(mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| Error::Trace(e.to_string()))?;
        }
        let partial = self.path.with_extension("parquet.partial");
        std::fs::rename(&partial, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}
