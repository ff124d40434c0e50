//! Declaring a scenario parameter once. A section is written with
//! [`section!`]: each field's doc (meaning and unit), its default, its origin
//! (P = the paper, C = chosen here, SPEC section 10) and its [`Rule`] are
//! one declaration, from which come the struct, its `Default`, its
//! single-field checks and its rows of the guide's scenario reference (docs/scenarios.md)
//! (`sflam_core::config::reference_markdown`; a test fails when the guide
//! is stale). Choices are declared with [`choice!`], which gives serde, the
//! names and the "one of" text from one list. Only rules that relate two
//! fields live in `validate.rs`.

/// Where a default comes from (SPEC section 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The paper's value.
    P,
    /// Chosen here, the paper's value being lost or not given.
    C,
    /// A setting of the tool, not of the system model.
    X,
}

/// What values a single field allows.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// Any value of the field's type (serde has checked the type).
    Any,
    /// An integer `>= lo`.
    MinU(u64),
    /// An integer in `[lo, hi]`.
    RangeU(u64, u64),
    /// Bits in 1..=16 (the quantizer's range).
    Bits,
    /// A finite number `>= lo`.
    MinF(f64),
    /// A finite number `> lo`.
    AboveF(f64),
    /// A finite number in `[lo, hi]`.
    RangeF(f64, f64),
    /// A finite number in `(lo, hi]`.
    AboveAtMostF(f64, f64),
    /// A finite number in `[lo, hi)`.
    RangeBelowF(f64, f64),
    /// A name from a registry (allowed names from the function).
    OneOf(fn() -> Vec<&'static str>),
    /// A non-empty name without path separators.
    Name,
    /// `""`, a path ending in one of the suffixes.
    PathEnding(&'static [&'static str]),
}

impl Rule {
    /// What the rule allows, as the error and the guide say it.
    pub fn allowed(&self) -> Option<String> {
        Some(match *self {
            Rule::Any => return None,
            Rule::MinU(lo) => format!("an integer >= {lo}"),
            Rule::RangeU(lo, hi) => format!("an integer in {lo}..={hi}"),
            Rule::Bits => "bits in 1..=16".into(),
            Rule::MinF(lo) => format!("a finite number >= {lo}"),
            Rule::AboveF(lo) => format!("a finite number > {lo}"),
            Rule::RangeF(lo, hi) => format!("a number in [{lo}, {hi}]"),
            Rule::AboveAtMostF(lo, hi) => format!("a number in ({lo}, {hi}]"),
            Rule::RangeBelowF(lo, hi) => format!("a number in [{lo}, {hi})"),
            Rule::OneOf(names) => format!("one of {}", names().join(", ")),
            Rule::Name => "a non-empty name without path separators".into(),
            Rule::PathEnding(ends) => {
                let list: Vec<String> = ends.iter().map(|e| format!("a {e} file")).collect();
                format!("\"\" or {}", list.join(" or "))
            }
        })
    }

    fn ok_u(&self, v: u64) -> bool {
        match *self {
            Rule::MinU(lo) => v >= lo,
            Rule::RangeU(lo, hi) => (lo..=hi).contains(&v),
            Rule::Bits => (1..=16).contains(&v),
            _ => self.ok_f(v as f64),
        }
    }

    fn ok_f(&self, v: f64) -> bool {
        match *self {
            Rule::MinU(lo) => v >= lo as f64,
            Rule::RangeU(lo, hi) => v >= lo as f64 && v <= hi as f64,
            Rule::Bits => (1.0..=16.0).contains(&v),
            Rule::MinF(lo) => v.is_finite() && v >= lo,
            Rule::AboveF(lo) => v.is_finite() && v > lo,
            Rule::RangeF(lo, hi) => v.is_finite() && v >= lo && v <= hi,
            Rule::AboveAtMostF(lo, hi) => v.is_finite() && v > lo && v <= hi,
            Rule::RangeBelowF(lo, hi) => v.is_finite() && v >= lo && v < hi,
            _ => true,
        }
    }

    fn ok_str(&self, v: &str) -> bool {
        match *self {
            Rule::OneOf(names) => names().contains(&v),
            Rule::Name => !v.is_empty() && !v.contains(['/', '\\']),
            Rule::PathEnding(ends) => v.is_empty() || ends.iter().any(|e| v.ends_with(e)),
            _ => true,
        }
    }
}

/// One semantic problem: field path, the value, what is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub field: String,
    pub value: String,
    pub allowed: String,
}

/// Collects the problems of a scenario.
#[derive(Default)]
pub struct Checker {
    pub out: Vec<Problem>,
}

impl Checker {
    pub fn push(&mut self, field: &str, value: impl ToString, allowed: impl Into<String>) {
        self.out.push(Problem { field: field.into(), value: value.to_string(), allowed: allowed.into() });
    }
}

/// A field type a [`Rule`] can check, and what its type alone allows.
pub trait Param {
    /// Pushes a problem when `self` breaks `rule`.
    fn check(&self, rule: &Rule, field: &str, c: &mut Checker);
    /// What the type allows when the rule says nothing (choices, booleans).
    fn type_allows() -> Option<String> {
        None
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn check(&self, rule: &Rule, field: &str, c: &mut Checker) {
                if !rule.ok_u(*self as u64) {
                    c.push(field, self, rule.allowed().unwrap_or_default());
                }
            }
        }
    )*};
}
int_param!(u32, u64, usize);

impl Param for f64 {
    fn check(&self, rule: &Rule, field: &str, c: &mut Checker) {
        if !rule.ok_f(*self) {
            c.push(field, self, rule.allowed().unwrap_or_default());
        }
    }
}

impl Param for String {
    fn check(&self, rule: &Rule, field: &str, c: &mut Checker) {
        if !rule.ok_str(self) {
            c.push(field, format!("{self:?}"), rule.allowed().unwrap_or_default());
        }
    }
}

impl Param for bool {
    fn check(&self, _: &Rule, _: &str, _: &mut Checker) {}
    fn type_allows() -> Option<String> {
        Some("true or false".into())
    }
}

impl Param for Vec<String> {
    fn check(&self, _: &Rule, _: &str, _: &mut Checker) {}
    fn type_allows() -> Option<String> {
        Some("a list of strings".into())
    }
}

/// One row of the scenario reference.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDoc {
    /// Dotted key, e.g. `network.rb_count`.
    pub key: String,
    /// Meaning, with the unit in brackets.
    pub doc: String,
    /// The default as TOML.
    pub default: String,
    pub origin: Origin,
    /// What is allowed, when more than the type says.
    pub allowed: Option<String>,
}

/// A section of the scenario: its table name, its doc, its fields.
pub trait Section: Default + serde::Serialize {
    /// The TOML table, e.g. `"network"`.
    const KEY: &'static str;
    /// One line on the section.
    const DOC: &'static str;
    /// The section's single-field problems.
    fn check(&self, c: &mut Checker);
    /// The section's rows of the reference.
    fn reference() -> Vec<ParamDoc>;
}

/// A default as the reference shows it: TOML, with large and small floats
/// in exponent form (`2e7`, `1e-28`).
pub fn show_default(v: &toml::Value) -> String {
    match v {
        toml::Value::Float(f) => {
            let a = f.abs();
            if a != 0.0 && !(1e-3..1e5).contains(&a) { format!("{f:e}") } else { format!("{f}") }
        }
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

/// Reads a u64 written as a TOML integer or as a string of decimal digits:
/// TOML integers stop at 2^63 - 1, and `--set` hands larger numbers on as
/// strings (sweeps derive seeds over the whole u64 range).
pub fn u64_from_int_or_digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer in 0..=18446744073709551615, or the same as a string of digits")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }
    d.deserialize_any(V)
}

/// Joins doc-comment lines into one paragraph.
pub fn join_doc(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Declares a scenario section: struct, `Default`, [`Section`].
///
/// ```text
/// section! {
///     /// `[run]`: the round loop and the output.
///     RunConfig "run" {
///         /// Global rounds R [1].
///         rounds: u32 = 20, X, Rule::MinU(1);
///     }
/// }
/// ```
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        $name:ident $key:literal {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])*
                $field:ident : $ty:ty = $default:expr, $origin:ident, $rule:expr;
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                #[doc = concat!("\n\nDefault `", stringify!($default), "` (", stringify!($origin), ").")]
                $(#[serde($($serde)*)])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl $crate::config::params::Section for $name {
            const KEY: &'static str = $key;
            const DOC: &'static str = concat!($($sdoc, " ",)*);

            fn check(&self, c: &mut $crate::config::params::Checker) {
                #[allow(unused_imports)]
                use $crate::config::params::{Param, Rule};
                $(
                    $crate::config::params::Param::check(
                        &self.$field, &$rule, concat!($key, ".", stringify!($field)), c,
                    );
                )*
            }

            fn reference() -> Vec<$crate::config::params::ParamDoc> {
                #[allow(unused_imports)]
                use $crate::config::params::{Param, Rule, Origin};
                let table = toml::Value::try_from(Self::default())
                    .expect("a section's defaults serialize to TOML");
                vec![$(
                    $crate::config::params::ParamDoc {
                        key: concat!($key, ".", stringify!($field)).to_string(),
                        doc: $crate::config::params::join_doc(&[$($doc),*]),
                        default: table
                            .get(stringify!($field))
                            .map($crate::config::params::show_default)
                            .unwrap_or_else(|| "none".into()),
                        origin: Origin::$origin,
                        allowed: ($rule).allowed().or_else(<$ty as Param>::type_allows),
                    },
                )*]
            }
        }
    };
}

/// Declares a choice: a `Copy` enum written in scenario files as one of the
/// given kebab-case names, with [`Param`] for the reference.
macro_rules! choice {
    (
        $(#[doc = $doc:literal])*
        $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[doc = $vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name in scenario files and traces.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// Every name, in declaration order.
            pub fn names() -> Vec<&'static str> {
                Self::NAMES.to_vec()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            /// The value named `s` in scenario files, or what is allowed.
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|k| k.as_str() == s)
                    .ok_or_else(|| format!("unknown {} `{s}`; allowed: {}", stringify!($name), $name::NAMES.join(", ")))
            }
        }

        impl $crate::config::params::Param for $name {
            fn check(&self, _: &$crate::config::params::Rule, _: &str, _: &mut $crate::config::params::Checker) {}
            fn type_allows() -> Option<String> {
                let names: Vec<String> = $name::names().iter().map(|n| format!("`\"{n}\"`")).collect();
                Some(format!("one of {}", names.join(", ")))
            }
        }
    };
}

pub(crate) use {choice, section};
