//! Loading a scenario: syntax and type errors with file, line and column;
//! unknown keys with the nearest known key; `--set` overrides applied on top.

use super::Scenario;
use crate::error::{ConfigError, Error, Origin, Result};
use std::path::Path;

/// Reads, parses, overrides and validates a scenario file.
pub fn load_scenario(path: &Path, overrides: &[String]) -> Result<Scenario> {
    load_scenario_str(&read_scenario_text(path)?, path, overrides)
}

/// A scenario file's text. A file that is not UTF-8 is bad input (exit 2),
/// named with the byte where it stops being text.
pub fn read_scenario_text(path: &Path) -> Result<String> {
    if path.is_dir() {
        return Err(Error::Input(format!("{} is a folder; a scenario is a .toml file", path.display())));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::Config(vec![ConfigError {
            origin: Origin::File { path: path.to_path_buf(), line: None, column: None },
            field: String::new(),
            value: String::new(),
            allowed: format!(
                "not a scenario: byte {} is not UTF-8 text (scenarios are TOML, which is UTF-8)",
                e.utf8_error().valid_up_to()
            ),
        }])
    })
}

/// As [`load_scenario`], from text already read; `path` names it in errors.
pub fn load_scenario_str(text: &str, path: &Path, overrides: &[String]) -> Result<Scenario> {
    let file_origin = |span: Option<std::ops::Range<usize>>| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Origin::File { path: path.to_path_buf(), line, column }
    };

    // Keys no section declares, in the file and in the overrides, are all
    // reported at once, with every other problem of the scenario.
    if let Some(errs) = unknown_keys_and_the_rest(text, overrides, &file_origin)? {
        return Err(Error::Config(errs));
    }

    // Pass 1: the file alone, so that errors point into it.
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| Error::Config(vec![syntax_error(&e, file_origin(e.span()))]))?;
    let mut scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.inner();
        let value = value_at(text, &field).unwrap_or_default();
        Error::Config(vec![ConfigError {
            origin: file_origin(inner.span().or_else(|| span_of(text, &field))),
            field: clean_path(&field),
            value,
            allowed: explain(inner.message()),
        }])
    })?;

    // Pass 2: overrides, each applied to the table and re-checked.
    if !overrides.is_empty() {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::Config(vec![syntax_error(&e, file_origin(e.span()))]))?;
        for ov in overrides {
            let (key, value) = parse_override(ov)?;
            set_path(&mut table, &key, value).map_err(|allowed| {
                Error::Config(vec![ConfigError {
                    origin: Origin::Override(ov.clone()),
                    field: key.clone(),
                    value: String::new(),
                    allowed,
                }])
            })?;
        }
        scenario = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let field = clean_path(&e.path().to_string());
            let ov = overrides
                .iter()
                .rev()
                .find(|o| o.split('=').next().map(str::trim) == Some(field.as_str()))
                .cloned()
                .unwrap_or_else(|| overrides.join(" "));
            Error::Config(vec![ConfigError {
                origin: Origin::Override(ov),
                field,
                value: String::new(),
                allowed: explain(&e.inner().to_string()),
            }])
        })?;
    }

    let errs = problem_errors(&scenario, text, overrides, &file_origin);
    if !errs.is_empty() {
        return Err(Error::Config(errs));
    }
    Ok(scenario)
}

/// The semantic problems of `scenario` as errors, each pointing at the
/// last override that set its field, else into the file.
fn problem_errors(
    scenario: &Scenario,
    text: &str,
    overrides: &[String],
    file_origin: &dyn Fn(Option<std::ops::Range<usize>>) -> Origin,
) -> Vec<ConfigError> {
    super::validate(scenario)
        .into_iter()
        .map(|p| {
            let ov = overrides.iter().rev().find(|o| o.split('=').next().map(str::trim) == Some(p.field.as_str()));
            let origin = match ov {
                Some(o) => Origin::Override(o.clone()),
                None => file_origin(span_of(text, &p.field)),
            };
            ConfigError { origin, field: p.field, value: p.value, allowed: p.allowed }
        })
        .collect()
}

/// Every section's name with its field names, from the declarations;
/// built once.
fn known_keys() -> &'static [(&'static str, Vec<String>)] {
    static KNOWN: std::sync::OnceLock<Vec<(&'static str, Vec<String>)>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        super::reference()
            .into_iter()
            .map(|(key, _, rows)| {
                let fields = rows.iter().filter_map(|r| Some(r.key.strip_prefix(key)?.strip_prefix('.')?.to_string()));
                (key, fields.collect())
            })
            .collect()
    })
}

/// The known name nearest to `bad`, when one is near enough to suggest.
fn nearest<'a>(bad: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(bad, k), *k))
        .min()
        .filter(|(d, k)| *d <= k.len().max(bad.len()) / 2 + 1)
        .map(|(_, k)| k)
}

/// The keys of `table` that no section declares: (dotted key, message).
fn unknown_keys(table: &toml::Table) -> Vec<(String, String)> {
    let suggest = |bad: &str, known: &[&str]| nearest(bad, known).map(|k| format!("; did you mean `{k}`?"));
    let names: Vec<&str> = known_keys().iter().map(|(k, _)| *k).collect();
    let mut out = Vec::new();
    for (key, value) in table {
        let Some((_, fields)) = known_keys().iter().find(|(k, _)| k == key) else {
            let hint = suggest(key, &names).unwrap_or_default();
            out.push((key.clone(), format!("unknown section `{key}`{hint} (allowed: {})", names.join(", "))));
            continue;
        };
        let Some(inner) = value.as_table() else { continue };
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        for f in inner.keys().filter(|f| !fields.contains(&f.as_str())) {
            let hint = suggest(f, &fields).unwrap_or_default();
            out.push((
                format!("{key}.{f}"),
                format!("unknown key `{f}`{hint} (allowed in [{key}]: {})", fields.join(", ")),
            ));
        }
    }
    out
}

/// When the file or the overrides name keys no section declares: every
/// one of them, and every other problem of the scenario without them.
/// `None` when every key is known (the usual path reports the rest).
fn unknown_keys_and_the_rest(
    text: &str,
    overrides: &[String],
    file_origin: &dyn Fn(Option<std::ops::Range<usize>>) -> Origin,
) -> Result<Option<Vec<ConfigError>>> {
    let Ok(mut table) = toml::from_str::<toml::Table>(text) else { return Ok(None) };
    let in_file = unknown_keys(&table);
    let mut errs: Vec<ConfigError> = in_file
        .iter()
        .map(|(key, allowed)| ConfigError {
            origin: file_origin(span_of(text, key)),
            field: key.clone(),
            value: String::new(),
            allowed: allowed.clone(),
        })
        .collect();
    let mut applied = Vec::new();
    for ov in overrides {
        let Ok((key, value)) = parse_override(ov) else { continue };
        let mut one = toml::Table::new();
        if set_path(&mut one, &key, value.clone()).is_err() {
            continue;
        }
        match unknown_keys(&one).into_iter().next() {
            Some((k, allowed)) => {
                errs.push(ConfigError {
                    origin: Origin::Override(ov.clone()),
                    field: k,
                    value: String::new(),
                    allowed,
                });
            }
            None => {
                if set_path(&mut table, &key, value).is_ok() {
                    applied.push(ov.clone());
                }
            }
        }
    }
    if errs.is_empty() {
        return Ok(None);
    }
    // The rest of the scenario, without the file's unknown keys (those of
    // the overrides were never applied).
    for (key, _) in &in_file {
        match key.split_once('.') {
            Some((sec, f)) => {
                if let Some(t) = table.get_mut(sec).and_then(|v| v.as_table_mut()) {
                    t.remove(f);
                }
            }
            None => {
                table.remove(key);
            }
        }
    }
    match serde_path_to_error::deserialize::<_, Scenario>(toml::Value::Table(table)) {
        Ok(scenario) => errs.extend(problem_errors(&scenario, text, &applied, file_origin)),
        Err(e) => {
            let field = clean_path(&e.path().to_string());
            errs.push(ConfigError {
                origin: file_origin(span_of(text, &field)),
                value: value_at(text, &field).unwrap_or_default(),
                field,
                allowed: explain(&e.inner().to_string()),
            });
        }
    }
    Ok(Some(errs))
}

/// Splits `a.b=value`; the value is read as a TOML value (number, bool,
/// string, array), falling back to a bare string.
pub fn parse_override(s: &str) -> Result<(String, toml::Value)> {
    let Some((key, raw)) = s.split_once('=') else {
        return Err(Error::Config(vec![ConfigError {
            origin: Origin::Override(s.to_string()),
            field: String::new(),
            value: s.to_string(),
            allowed: "expected KEY=VALUE, e.g. `--set network.rb_count=20`".into(),
        }]));
    };
    let key = key.trim().to_string();
    let raw = raw.trim();
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    Ok((key, value))
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("a key is dotted names like `network.rb_count`".into());
    }
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{p}` is a value, not a section")),
        };
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn syntax_error(e: &toml::de::Error, origin: Origin) -> ConfigError {
    ConfigError {
        origin,
        field: String::new(),
        value: String::new(),
        allowed: format!("TOML syntax: {}", e.message().trim()),
    }
}

/// serde_path_to_error writes `?` for the root and `.` between keys.
fn clean_path(p: &str) -> String {
    if p == "?" || p == "." { String::new() } else { p.to_string() }
}

/// Rewrites serde's messages: unknown keys and variants get the nearest
/// known name suggested.
fn explain(msg: &str) -> String {
    // An override's message ends with its key on a line of its own
    // ("\nin `run.rounds`"), which the error names already.
    let msg = msg.trim();
    let msg = msg.lines().next().unwrap_or(msg);
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let rest = rest.split(" for key").next().unwrap_or(rest);
            let bad = rest.split('`').next().unwrap_or("");
            let known: Vec<&str> =
                rest.split('`').skip(1).enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, s)| s).collect();
            let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            return match nearest(bad, &known) {
                Some(k) => {
                    format!("unknown {what} `{bad}`; did you mean `{k}`? (allowed: {list})")
                }
                None => format!("unknown {what} `{bad}` (allowed: {list})"),
            };
        }
    }
    msg.to_string()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// The byte span of the value at a dotted path, when the file has it.
fn span_of(text: &str, path: &str) -> Option<std::ops::Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let (_, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *p)?;
        if i + 1 == parts.len() {
            return Some(v.span());
        }
        match v.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    None
}

fn value_at(text: &str, path: &str) -> Option<String> {
    span_of(text, path).and_then(|s| text.get(s)).map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_for_misspelled_key() {
        let m = explain("unknown field `rb_cont`, expected one of `rb_count`, `rb_bandwidth_hz`");
        assert!(m.contains("did you mean `rb_count`"), "{m}");
    }

    /// An override's message names its key on a line of its own: not an
    /// allowed value, and not repeated.
    #[test]
    fn allowed_values_of_an_override_leave_out_the_key() {
        let m = explain("unknown variant `adamw`, expected `sgd` or `adam`\nin `training.optimizer`\n");
        assert_eq!(m, "unknown value `adamw`; did you mean `adam`? (allowed: `sgd`, `adam`)");
        let m = explain("invalid type: string \"x\", expected u32\nin `run.rounds`\n");
        assert_eq!(m, "invalid type: string \"x\", expected u32");
    }

    #[test]
    fn line_col_is_one_based() {
        assert_eq!(line_col("a\nbc = 1", 3), (2, 2));
    }
}
