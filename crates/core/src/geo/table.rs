//! Reading a small numeric table (cell sites, device positions, backhaul
//! links) from CSV or Parquet: named columns of finite numbers within each
//! column's physical range, with errors that name the file, the scenario
//! field, the row and the column.

use crate::error::{Error, Result};
use arrow_array::{
    Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use std::collections::BTreeMap;
use std::path::Path;

/// One column a table may have: its name, whether it must be there, and
/// the closed range its values must lie in (units as the name says).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
    pub min: f64,
    pub max: f64,
}

impl Column {
    pub const fn required(name: &'static str, min: f64, max: f64) -> Column {
        Column { name, required: true, min, max }
    }
    pub const fn optional(name: &'static str, min: f64, max: f64) -> Column {
        Column { name, required: false, min, max }
    }
}

/// The columns of `spec` the file has (the required ones always), as f64
/// in row order. `field` is the scenario field that names the file.
pub fn read_columns(path: &Path, field: &str, spec: &[Column]) -> Result<BTreeMap<String, Vec<f64>>> {
    let wanted = |name: &str| spec.iter().any(|c| c.name == name);
    let at = format!("{} ({field})", path.display());
    let cols = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => read_csv(path, &at, &wanted)?,
        Some("parquet") => read_parquet(path, &at, &wanted)?,
        _ => return Err(Error::Input(format!("{at}: a .csv or .parquet file is needed"))),
    };
    let allowed = || spec.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
    for c in spec.iter().filter(|c| c.required) {
        if !cols.contains_key(c.name) {
            return Err(Error::Input(format!("{at}: no column `{}` (columns used: {})", c.name, allowed())));
        }
    }
    for c in spec {
        let Some(v) = cols.get(c.name) else { continue };
        if let Some(i) = v.iter().position(|x| !(x.is_finite() && *x >= c.min && *x <= c.max)) {
            return Err(Error::Input(format!(
                "{at}: row {}: column `{}` = {}: a finite number in [{:e}, {:e}] is needed",
                i + 1,
                c.name,
                crate::config::params::show_default(&toml::Value::Float(v[i])),
                c.min,
                c.max
            )));
        }
    }
    Ok(cols)
}

/// Refuses a header that names a column twice: which one would be read is
/// a guess.
fn unique(at: &str, names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            return Err(Error::Input(format!(
                "{at}: column `{n}` appears twice in the header (columns {} and {}); name each column once",
                j + 1,
                i + 1
            )));
        }
    }
    Ok(())
}

fn read_csv(path: &Path, at: &str, wanted: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Vec<f64>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::Input(format!("{at}: {e}")))?;
    let mut rd = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(file);
    let headers = rd.headers().map_err(|e| Error::Input(format!("{at}: {e}")))?.clone();
    unique(at, &headers.iter().map(str::to_string).collect::<Vec<_>>())?;
    let picked: Vec<(usize, String)> =
        headers.iter().enumerate().filter(|(_, h)| wanted(h)).map(|(i, h)| (i, h.to_string())).collect();
    let mut cols: BTreeMap<String, Vec<f64>> = picked.iter().map(|(_, h)| (h.clone(), Vec::new())).collect();
    for (row, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| Error::Input(format!("{at}: row {}: {e}", row + 1)))?;
        for (i, h) in &picked {
            let cell = rec.get(*i).unwrap_or("");
            let v: f64 = cell
                .parse()
                .map_err(|_| Error::Input(format!("{at}: row {}: column `{h}` = {cell:?} is not a number", row + 1)))?;
            cols.get_mut(h).expect("picked column").push(v);
        }
    }
    Ok(cols)
}

fn read_parquet(path: &Path, at: &str, wanted: &dyn Fn(&str) -> bool) -> Result<BTreeMap<String, Vec<f64>>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: &dyn std::fmt::Display| Error::Input(format!("{at}: {e}"));
    let f = std::fs::File::open(path).map_err(|e| bad(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| bad(&e))?;
    // The schema, not the first batch, says which columns there are: a
    // table of no rows still has its columns.
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    unique(at, &names)?;
    let mut cols: BTreeMap<String, Vec<f64>> =
        names.iter().filter(|n| wanted(n)).map(|n| (n.clone(), Vec::new())).collect();
    let reader = builder.build().map_err(|e| bad(&e))?;
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
            take!(
                Float64Array,
                Float32Array,
                Int64Array,
                Int32Array,
                Int16Array,
                Int8Array,
                UInt64Array,
                UInt32Array,
                UInt16Array,
                UInt8Array
            );
            return Err(Error::Input(format!(
                "{at}: column `{}` has type {}; allowed: a float or integer column (Float32/64, Int8-64, UInt8-64)",
                field.name(),
                field.data_type()
            )));
        }
    }
    Ok(cols)
}
