//! A small columnar buffer: rows push typed values column by column; a full
//! buffer becomes an Arrow `RecordBatch`.

use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, Float64Array, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Column types used by the traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    U32,
    U64,
    F64,
    OptF64,
    OptU32,
    Str,
    OptStr,
    /// A list of u32 per row (e.g. class counts).
    ListU32,
}

/// A trace row type.
pub trait Row {
    /// File stem of its table.
    const TABLE: &'static str;
    /// (name, type) of every column, units in the names.
    fn columns() -> Vec<(&'static str, Col)>;
    /// Pushes one value per column, in order.
    fn push(&self, c: &mut ColumnSet);
}

enum Buf {
    U32(Vec<Option<u32>>),
    U64(Vec<u64>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<&'static str>>),
    ListU32(Vec<Vec<u32>>),
}

/// Column buffers for one table.
pub struct ColumnSet {
    schema: SchemaRef,
    bufs: Vec<Buf>,
    next: usize,
    rows: usize,
}

impl ColumnSet {
    pub fn new(cols: &[(&'static str, Col)]) -> ColumnSet {
        let fields: Vec<Field> = cols
            .iter()
            .map(|(n, c)| {
                let (dt, nullable) = match c {
                    Col::U32 => (DataType::UInt32, false),
                    Col::OptU32 => (DataType::UInt32, true),
                    Col::U64 => (DataType::UInt64, false),
                    Col::F64 => (DataType::Float64, false),
                    Col::OptF64 => (DataType::Float64, true),
                    Col::Str => (DataType::Utf8, false),
                    Col::OptStr => (DataType::Utf8, true),
                    Col::ListU32 => (DataType::List(Arc::new(Field::new_list_field(DataType::UInt32, true))), false),
                };
                Field::new(*n, dt, nullable)
            })
            .collect();
        let bufs = cols
            .iter()
            .map(|(_, c)| match c {
                Col::U32 | Col::OptU32 => Buf::U32(Vec::new()),
                Col::U64 => Buf::U64(Vec::new()),
                Col::F64 | Col::OptF64 => Buf::F64(Vec::new()),
                Col::Str | Col::OptStr => Buf::Str(Vec::new()),
                Col::ListU32 => Buf::ListU32(Vec::new()),
            })
            .collect();
        ColumnSet { schema: Arc::new(Schema::new(fields)), bufs, next: 0, rows: 0 }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    fn slot(&mut self) -> &mut Buf {
        let i = self.next;
        self.next += 1;
        if self.next == self.bufs.len() {
            self.next = 0;
            self.rows += 1;
        }
        &mut self.bufs[i]
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.opt_u32(Some(v))
    }
    pub fn opt_u32(&mut self, v: Option<u32>) -> &mut Self {
        match self.slot() {
            Buf::U32(b) => b.push(v),
            _ => panic!("trace column type mismatch (u32): a Row impl is out of step with its columns()"),
        }
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        match self.slot() {
            Buf::U64(b) => b.push(v),
            _ => panic!("trace column type mismatch (u64): a Row impl is out of step with its columns()"),
        }
        self
    }
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.opt_f64(Some(v))
    }
    pub fn opt_f64(&mut self, v: Option<f64>) -> &mut Self {
        match self.slot() {
            Buf::F64(b) => b.push(v),
            _ => panic!("trace column type mismatch (f64): a Row impl is out of step with its columns()"),
        }
        self
    }
    pub fn str(&mut self, v: &'static str) -> &mut Self {
        self.opt_str(Some(v))
    }
    pub fn opt_str(&mut self, v: Option<&'static str>) -> &mut Self {
        match self.slot() {
            Buf::Str(b) => b.push(v),
            _ => panic!("trace column type mismatch (str): a Row impl is out of step with its columns()"),
        }
        self
    }

    pub fn list_u32(&mut self, v: &[u32]) -> &mut Self {
        match self.slot() {
            Buf::ListU32(b) => b.push(v.to_vec()),
            _ => panic!("trace column type mismatch (list<u32>): a Row impl is out of step with its columns()"),
        }
        self
    }

    /// Drains the buffered rows into a batch.
    pub fn take_batch(&mut self) -> Result<RecordBatch, String> {
        let arrays: Vec<ArrayRef> = self
            .bufs
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Buf::U32(v) => Arc::new(UInt32Array::from(std::mem::take(v))),
                    Buf::U64(v) => Arc::new(UInt64Array::from(std::mem::take(v))),
                    Buf::F64(v) => Arc::new(Float64Array::from(std::mem::take(v))),
                    Buf::Str(v) => Arc::new(StringArray::from(std::mem::take(v))),
                    Buf::ListU32(v) => Arc::new(ListArray::from_iter_primitive::<UInt32Type, _, _>(
                        std::mem::take(v).into_iter().map(|l| Some(l.into_iter().map(Some))),
                    )),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| e.to_string())
    }
}

/// A field type a trace column can hold: its column type and how it is
/// pushed. [`row!`] derives a row's columns and push order from its fields
/// through this trait, so the two can never disagree.
pub trait Cell {
    const COL: Col;
    fn put(&self, c: &mut ColumnSet);
}

macro_rules! cell {
    ($($t:ty => $col:ident, $m:ident, |$v:ident| $e:expr;)*) => {$(
        impl Cell for $t {
            const COL: Col = Col::$col;
            fn put(&self, c: &mut ColumnSet) {
                let $v = self;
                c.$m($e);
            }
        }
    )*};
}

cell! {
    u32 => U32, u32, |v| *v;
    u64 => U64, u64, |v| *v;
    f64 => F64, f64, |v| *v;
    Option<f64> => OptF64, opt_f64, |v| *v;
    Option<u32> => OptU32, opt_u32, |v| *v;
    &'static str => Str, str, |v| *v;
    Option<&'static str> => OptStr, opt_str, |v| *v;
    Vec<u32> => ListU32, list_u32, |v| v;
}

/// Declares a trace row: the struct and its [`Row`] impl, the columns in
/// field order, named as the fields (units in the names), typed by [`Cell`].
#[macro_export]
macro_rules! row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $table:literal {
            $( $(#[doc = $doc:literal])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl $crate::trace::Row for $name {
            const TABLE: &'static str = $table;
            fn columns() -> Vec<(&'static str, $crate::trace::columns::Col)> {
                vec![$((stringify!($field), <$ty as $crate::trace::columns::Cell>::COL)),*]
            }
            fn push(&self, c: &mut $crate::trace::ColumnSet) {
                $( $crate::trace::columns::Cell::put(&self.$field, c); )*
            }
        }
    };
}
