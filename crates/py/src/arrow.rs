//! A table handed to Python as Arrow memory through the Arrow C stream
//! interface (`__arrow_c_stream__`, the PyCapsule protocol polars and
//! pyarrow read without copying).

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::ffi::CString;

/// One trace table in Arrow memory; `polars.DataFrame(table)` reads it.
#[pyclass(module = "sflam")]
pub struct ArrowTable {
    #[pyo3(get)]
    name: &'static str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl ArrowTable {
    pub fn new(name: &'static str, schema: SchemaRef, batches: Vec<RecordBatch>) -> ArrowTable {
        ArrowTable { name, schema, batches }
    }
}

/// The stream moves into the capsule; its consumer takes it over (and
/// marks it released), else the capsule's destructor releases it.
#[repr(transparent)]
struct Stream(FFI_ArrowArrayStream);
// SAFETY: the stream owns its batches (Arc'd, immutable buffers) and is
// only read by the one consumer that takes it.
unsafe impl Send for Stream {}

#[pymethods]
impl ArrowTable {
    /// The Arrow C stream protocol; `requested_schema` is not honoured (the
    /// table has one schema).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader = RecordBatchIterator::new(self.batches.clone().into_iter().map(Ok), self.schema.clone());
        let stream = Stream(FFI_ArrowArrayStream::new(Box::new(reader)));
        let name = CString::new("arrow_array_stream").expect("no NUL");
        PyCapsule::new(py, stream, Some(name))
    }

    /// Rows [1].
    fn __len__(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn __repr__(&self) -> String {
        format!("<sflam.ArrowTable {} with {} rows>", self.name, self.__len__())
    }
}
