//! Reading a small numeric table (cell sites, device positions) from CSV or
//! Parquet: named columns of finite numbers, with errors that name the
//! file, the row and the column.

use crate::error::{Error, Result};
use arrow_array::{Array, Float32Array, Float64Array, Int32Array, Int64Array, UInt32Array, UInt64Array};
use std::collections::BTreeMap;
use std::path::Path;

/// The `required` and whichever `optional` columns the file has, as f64,
/// in row order.
pub fn read_columns(path: &Path, required: &[&str], optional: &[&str]) -> Result<BTreeMap<String, Vec<f64>>> {
    let wanted = |name: &str| required.contains(&name) || optional.contains(&name);
    let cols = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => read_csv(path, &wanted)?,
        Some("parquet") => read_parquet(path, &wanted)?,
        _ => return Err(Error::Input(format!("{}: a .csv or .parquet file is needed", path.display()))),
    };
    let allowed = || required.iter().chain(optional).copied().collect::<Vec<_>>().join(", ");
    for r in required {
        if !cols.contains_key(*r) {
            return Err(Error::Input(format!("{}: no column `{r}` (columns used: {})", path.display(), allowed())));
        }
    }
    for (name, v) in &cols {
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::Input(format!(
                "{}: row {}: column `{name}` must be a finite number",
                path.display(),
                i + 1
            )));
        }
    }
    Ok(cols)
}

fn read_csv(path: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Vec<f64>>> {
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let headers = rd.headers().map_err(|e| Error::Input(format!("{}: {e}", path.display())))?.clone();
    let picked: Vec<(usize, String)> =
        headers.iter().enumerate().filter(|(_, h)| wanted(h)).map(|(i, h)| (i, h.to_string())).collect();
    let mut cols: BTreeMap<String, Vec<f64>> = picked.iter().map(|(_, h)| (h.clone(), Vec::new())).collect();
    for (row, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| Error::Input(format!("{}: row {}: {e}", path.display(), row + 1)))?;
        for (i, h) in &picked {
            let cell = rec.get(*i).unwrap_or("");
            let v: f64 = cell.parse().map_err(|_| {
                Error::Input(format!("{}: row {}: column `{h}` = {cell:?} is not a number", path.display(), row + 1))
            })?;
            cols.get_mut(h).expect("picked column").push(v);
        }
    }
    Ok(cols)
}

fn read_parquet(path: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Vec<f64>>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: &dyn std::fmt::Display| Error::Input(format!("{}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| bad(&e))?.build().map_err(|e| bad(&e))?;
    let mut cols: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
            if !wanted(field.name()) {
                continue;
            }
            let out = cols.entry(field.name().clone()).or_default();
            let any = col.as_any();
            macro_rules! take {
                ($($t:ty),*) => {
                    $(if let Some(a) = any.downcast_ref::<$t>() {
                        out.extend((0..a.len()).map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) as f64 }));
                        continue;
                    })*
                };
            }
            take!(Float64Array, Float32Array, Int64Array, Int32Array, UInt64Array, UInt32Array);
            return Err(Error::Input(format!(
                "{}: column `{}` has type {}; a number column is needed",
                path.display(),
                field.name(),
                field.data_type()
            )));
        }
    }
    Ok(cols)
}
