//! Output folders: sflam deletes only what it wrote, and one process
//! writes a folder at a time.
//!
//! Every folder sflam writes holds a marker, [`MARKER`] (JSON: the command
//! kind, whether the output is complete and, when it is, the entries it
//! wrote). A folder is replaced only when its marker says it is a complete
//! output of the same kind and it holds nothing but the entries listed
//! there; anything else (a folder of the user's, a file, `.`, `..`, `/`, the
//! working folder or one above it) is refused before any work.
//!
//! Output is written aside into `<out>.partial` and swapped in when whole:
//! the old output is renamed to `<out>.replaced`, the new one to `<out>`,
//! then the old is removed. A process killed at any instant leaves the old
//! output whole (at `<out>` or `<out>.replaced`) or the new one whole; the
//! next writer, holding the lock, finishes the clean-up.
//!
//! The lock is an OS file lock on `<out>.lock` beside the folder (released
//! by the OS when a process dies); a second writer is refused at once.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Component, Path, PathBuf};

/// The marker file's name inside every output folder sflam writes.
pub const MARKER: &str = ".sflam-output";

/// The command that writes an output folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `sflam run` (and each point of a sweep).
    Run,
    /// `sflam sweep`'s root folder.
    Sweep,
    /// `sflam train`.
    Train,
    /// `sflam run --dump-problems`.
    DumpProblems,
    /// `sflam calibrate`.
    Calibrate,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Train => "train",
            Kind::DumpProblems => "dump-problems",
            Kind::Calibrate => "calibrate",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Marker {
    kind: Kind,
    complete: bool,
    /// The entries (file and folder names) sflam wrote, when complete.
    #[serde(default)]
    entries: Vec<String>,
    sflam_version: String,
}

/// What a path holds, as far as writing an output there goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing: the folder will be created.
    Absent,
    /// An empty folder: it may be used.
    Empty,
    /// An output of this kind, complete or not, holding only what sflam wrote.
    Ours { complete: bool },
}

/// `out` made absolute and lexically clean (no `.`, `..` or trailing
/// separator), resolved through symbolic links where it exists. Refuses
/// `/`, the working folder and any folder above it.
pub fn normalize(out: &Path) -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let mut abs = PathBuf::new();
    for c in cwd.join(out).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                abs.pop();
            }
            other => abs.push(other),
        }
    }
    // Resolve symbolic links in the part that exists, so that two spellings
    // of one folder are one folder (and one lock).
    let abs = match abs.canonicalize() {
        Ok(c) => c,
        Err(_) => match (abs.parent().and_then(|p| p.canonicalize().ok()), abs.file_name()) {
            (Some(p), Some(n)) => p.join(n),
            _ => abs,
        },
    };
    if abs.file_name().is_none() {
        return Err(Error::Input(format!(
            "output folder `{}` is the file system's root: choose a folder of its own, e.g. -o runs/x",
            out.display()
        )));
    }
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    if cwd.starts_with(&abs) {
        return Err(Error::Input(format!(
            "output folder `{}` is the working folder or holds it ({}); sflam replaces its output folder \
             as a whole, so choose a folder of its own, e.g. -o runs/x",
            out.display(),
            abs.display()
        )));
    }
    Ok(abs)
}

/// `<out><suffix>` beside `out` (`out` normalized, so it has a name).
pub fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!("{name}{suffix}"))
}

fn read_marker(dir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

fn entries(dir: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<_>>()?;
    v.sort();
    Ok(v)
}

fn listed(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(4).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(4);
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

/// What `path` holds, or why sflam may not write a `kind` output there.
/// `shown` names the path as the user gave it.
pub fn inspect(path: &Path, kind: Kind, shown: &Path) -> Result<Found> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Absent),
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.is_dir() {
        return Err(Error::Input(format!(
            "output `{}` is a file, not a folder: sflam writes a folder there and never replaces a file \
             it did not write; choose another output folder",
            shown.display()
        )));
    }
    let names = entries(path)?;
    if names.is_empty() {
        return Ok(Found::Empty);
    }
    let Some(m) = read_marker(path) else {
        return Err(Error::Input(format!(
            "output folder `{}` holds files sflam did not write ({}); sflam never deletes what it did not \
             write: choose a new or empty folder, or move those files yourself",
            shown.display(),
            listed(&names)
        )));
    };
    if m.kind != kind {
        return Err(Error::Input(format!(
            "output folder `{}` holds a `sflam {}` output, not a `sflam {}` one; choose another folder",
            shown.display(),
            m.kind.name(),
            kind.name()
        )));
    }
    if m.complete {
        let foreign: Vec<String> =
            names.into_iter().filter(|n| n != MARKER && !m.entries.iter().any(|e| e == n)).collect();
        if !foreign.is_empty() {
            return Err(Error::Input(format!(
                "output folder `{}` holds a `sflam {}` output and files sflam did not write there ({}); \
                 sflam never deletes what it did not write: move them, or choose another folder",
                shown.display(),
                kind.name(),
                listed(&foreign)
            )));
        }
    }
    Ok(Found::Ours { complete: m.complete })
}

/// Whether `dir` holds a complete output of `kind`.
pub fn is_complete(dir: &Path, kind: Kind) -> bool {
    read_marker(dir).is_some_and(|m| m.kind == kind && m.complete)
}

fn write_marker(dir: &Path, kind: Kind, complete: bool, entries: Vec<String>) -> Result<()> {
    let m = Marker { kind, complete, entries, sflam_version: env!("CARGO_PKG_VERSION").to_string() };
    let text = serde_json::to_string_pretty(&m).map_err(|e| Error::failure("output marker", e))?;
    let (path, tmp) = (dir.join(MARKER), dir.join(format!("{MARKER}.partial")));
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

/// Creates `dir` (absent or empty) as an incomplete output of `kind`.
pub fn create_marked(dir: &Path, kind: Kind) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_marker(dir, kind, false, Vec::new())
}

/// What sflam writes into its lock files, so that it never takes or
/// removes a file of the same name that is not its own.
const LOCK_TEXT: &str = "sflam output lock\n";

/// An exclusive OS lock on `<out>.lock`, held while a process writes `out`.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    /// Takes the lock of `out` (normalized), or says which folder another
    /// process is writing.
    pub fn take(out: &Path, shown: &Path) -> Result<Lock> {
        let path = sibling(out, ".lock");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        // A lock file removed (by a writer that finished) after we opened
        // it locks nothing: retry on the file now at the path.
        for _ in 0..16 {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Input(format!(
                        "another sflam process is writing `{}` (it holds {}); wait for it to finish, \
                         or choose another output folder",
                        shown.display(),
                        path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if same_file(&file, &path) {
                // New (empty), or left by a sflam that died holding it; a
                // file of anyone else's is neither used nor removed.
                use std::io::{Read, Write};
                let mut text = String::new();
                let ours = file.read_to_string(&mut text).is_ok() && (text.is_empty() || text == LOCK_TEXT);
                if !ours {
                    return Err(Error::Input(format!(
                        "`{}` exists and sflam did not write it; sflam locks its output folder `{}` with that \
                         file: move it, or choose another output folder",
                        path.display(),
                        shown.display()
                    )));
                }
                if text.is_empty() {
                    file.write_all(LOCK_TEXT.as_bytes()).map_err(|e| Error::io(&path, e))?;
                }
                return Ok(Lock { path, _file: file });
            }
        }
        Err(Error::failure(format!("locking {}", path.display()), "the lock file kept changing"))
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held: a process that opened it meanwhile
        // finds it gone after locking and retries (see `take`).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An output being written aside, in `<out>.partial`, under the lock.
#[derive(Debug)]
pub struct Staged {
    kind: Kind,
    out: PathBuf,
    shown: PathBuf,
    partial: PathBuf,
    /// What `out` held when the lock was taken.
    pub target: Found,
    /// What `<out>.partial` held (an interrupted attempt's output).
    pub leftover: Found,
    _lock: Lock,
}

impl Staged {
    /// Locks `out`, checks that sflam may write a `kind` output there,
    /// and finishes an interrupted swap. Writes nothing else yet.
    pub fn open(out: &Path, kind: Kind) -> Result<Staged> {
        let abs = normalize(out)?;
        let lock = Lock::take(&abs, out)?;
        let partial = sibling(&abs, ".partial");
        let replaced = sibling(&abs, ".replaced");
        let mut target = inspect(&abs, kind, out)?;
        let mut leftover = inspect(&partial, kind, &sibling(out, ".partial"))?;
        if let Found::Ours { complete: false } = target {
            return Err(Error::Input(format!(
                "output folder `{}` holds an unfinished `sflam {}` output that is not where sflam works \
                 (that is `{}`); move it, or choose another folder",
                out.display(),
                kind.name(),
                partial.display()
            )));
        }
        // A swap killed half-way (see `commit`): finish it, or put the old
        // output back where the new one is not whole.
        let done = Found::Ours { complete: true };
        match inspect(&replaced, kind, &sibling(out, ".replaced"))? {
            Found::Absent => {}
            f if f == done && target == done => {
                std::fs::remove_dir_all(&replaced).map_err(|e| Error::io(&replaced, e))?;
            }
            f if f == done && target == Found::Absent && leftover == done => {
                std::fs::rename(&partial, &abs).map_err(|e| Error::io(&abs, e))?;
                std::fs::remove_dir_all(&replaced).map_err(|e| Error::io(&replaced, e))?;
                (target, leftover) = (done, Found::Absent);
            }
            f if f == done && target == Found::Absent => {
                std::fs::rename(&replaced, &abs).map_err(|e| Error::io(&abs, e))?;
                target = done;
            }
            _ => {
                return Err(Error::Input(format!(
                    "`{}` is in the way of sflam's swap of `{}`: move it, or choose another folder",
                    replaced.display(),
                    out.display()
                )));
            }
        }
        Ok(Staged { kind, out: abs, shown: out.to_path_buf(), partial, target, leftover, _lock: lock })
    }

    /// The folder written aside, `<out>.partial`.
    pub fn dir(&self) -> &Path {
        &self.partial
    }

    /// The final folder (normalized).
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Starts the output afresh: an interrupted attempt's leftovers (ours,
    /// marked) are removed and `<out>.partial` is created, marked.
    pub fn fresh(&mut self) -> Result<()> {
        if let Found::Ours { .. } = self.leftover {
            std::fs::remove_dir_all(&self.partial).map_err(|e| Error::io(&self.partial, e))?;
        }
        create_marked(&self.partial, self.kind)?;
        self.leftover = Found::Ours { complete: false };
        Ok(())
    }

    /// Removes `<out>.partial` (a failed attempt's, ours), best effort:
    /// the next writer would remove it anyway.
    pub fn discard(self) {
        if self.leftover != Found::Absent {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }

    /// Marks `<out>.partial` complete and swaps it in for `out`; the old
    /// output stays whole until the new one is in place.
    pub fn commit(self) -> Result<PathBuf> {
        let names: Vec<String> = entries(&self.partial)?.into_iter().filter(|n| n != MARKER).collect();
        write_marker(&self.partial, self.kind, true, names)?;
        // Checked again: the old output may have been touched meanwhile.
        match inspect(&self.out, self.kind, &self.shown) {
            Ok(Found::Absent | Found::Empty) => {
                // rename(2) replaces an empty folder in one step.
                std::fs::rename(&self.partial, &self.out).map_err(|e| Error::io(&self.out, e))?;
            }
            Ok(Found::Ours { complete: true }) => {
                let replaced = sibling(&self.out, ".replaced");
                std::fs::rename(&self.out, &replaced).map_err(|e| Error::io(&self.out, e))?;
                std::fs::rename(&self.partial, &self.out).map_err(|e| Error::io(&self.out, e))?;
                std::fs::remove_dir_all(&replaced).map_err(|e| Error::io(&replaced, e))?;
            }
            Ok(Found::Ours { complete: false }) | Err(_) => {
                return Err(Error::Input(format!(
                    "`{}` changed while sflam wrote its new output (it now holds files sflam did not write); \
                     the new output is whole in `{}`",
                    self.shown.display(),
                    self.partial.display()
                )));
            }
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_cleans_and_refuses_the_root_and_the_working_folder() {
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        let p = normalize(Path::new("a/b/../c/./")).unwrap();
        assert_eq!(p, cwd.join("a/c"));
        assert!(normalize(Path::new("/")).is_err());
        assert!(normalize(Path::new(".")).is_err());
        assert!(normalize(Path::new("..")).is_err());
        assert!(normalize(Path::new("x/..")).is_err());
        assert_eq!(sibling(&p, ".partial"), cwd.join("a/c.partial"));
    }
}
