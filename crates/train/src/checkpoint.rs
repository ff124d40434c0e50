//! `sflam train`'s checkpoints: each a folder `checkpoints/round-NNNNN/`
//! of Burn records made whole before `checkpoints/progress.json` names it.

use crate::config::inputs;
use crate::driver::{ParticipantRow, TrainRoundRow};
use crate::error::{Error, Result};
use crate::framework::ModelState;
use crate::training::Trainer;
use crate::{import, training};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `sflam train` leaves in `checkpoints/` besides the model.
#[derive(Serialize, Deserialize)]
pub(crate) struct Progress {
    /// Rounds done [1].
    pub(crate) round: u32,
    /// The scenario, so a resume cannot silently change it.
    pub(crate) scenario: String,
    pub(crate) rows: Vec<TrainRoundRow>,
    /// The `participants` rows of the rounds done. A checkpoint of an
    /// earlier build has none; it is refused for its build (see
    /// `load_checkpoint`), so the field may be absent to reach that error.
    #[serde(default)]
    pub(crate) participants: Vec<ParticipantRow>,
    /// The checkpoint's folder under `checkpoints/` (`round-NNNNN`).
    pub(crate) dir: String,
    /// The import report of `training.init`, when it was a timm checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) import: Option<import::ImportReport>,
}

pub(crate) fn ckpt_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The folder under `checkpoints/` of the checkpoint after `rounds` rounds.
pub(crate) fn round_dir(rounds: u32) -> String {
    format!("round-{rounds:05}")
}

/// A checkpoint is a folder `checkpoints/round-NNNNN/` with the model
/// files, made whole before `checkpoints/progress.json` (written to a
/// temporary file and renamed, which is atomic) names it; only then are
/// older folders removed. A job killed at any instant leaves either the old
/// progress naming the old, intact folder, or the new progress naming the
/// new, complete one: never a model of round r+k beside progress of round
/// r. `crash`: fault injection for tests (stop after the model files, as a
/// kill there would).
pub(crate) fn save_checkpoint(t: &Trainer, out: &Path, state: &ModelState, p: &Progress, crash: bool) -> Result<()> {
    let root = ckpt_dir(out);
    let dir = root.join(&p.dir);
    if dir.exists() {
        // Left by a job killed while writing it: never named by progress.
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    t.save(&state.global, &dir.join("global.bpk"))?;
    for (d, p) in &state.local {
        t.save(p, &dir.join(format!("local-{d}.bpk")))?;
    }
    // Kept optimizer states (`optimizer_state = "keep"`), Burn's records.
    for ((d, half), bytes) in t.kept_optimizers() {
        let path = dir.join(format!("optimizer-{d}-{}.bpk", half.name()));
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    if crash {
        return Err(Error::failure("checkpoint", "fault injected before progress.json"));
    }
    let json = serde_json::to_string_pretty(p).map_err(|e| Error::failure("writing progress.json", e))?;
    let tmp = root.join("progress.json.partial");
    std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, root.join("progress.json")).map_err(|e| Error::io(&root, e))?;
    // Older checkpoints (and a crashed attempt's) are no longer named.
    let entries = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("round-") && name != p.dir {
            std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
        }
    }
    Ok(())
}

/// The scenario's text without its `#` header (version, commit, seed note).
pub(crate) fn scenario_body(text: &str) -> String {
    text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
}

pub(crate) fn load_checkpoint(t: &Trainer, out: &Path, scenario: &str) -> Result<(ModelState, Progress)> {
    let root = ckpt_dir(out);
    let pj = root.join("progress.json");
    let text = std::fs::read_to_string(&pj).map_err(|e| Error::io(&pj, e))?;
    let p: Progress = serde_json::from_str(&text).map_err(|e| Error::Input(format!("{}: {e}", pj.display())))?;
    if scenario_body(&p.scenario) != scenario_body(scenario) {
        return Err(Error::Input(format!(
            "{}: the checkpoint was made with another scenario; resume with the same one",
            pj.display()
        )));
    }
    if let Some(why) = inputs::changed(&inputs::recorded(&p.scenario), &inputs::recorded(scenario)) {
        return Err(Error::Input(format!(
            "{}: cannot resume: {why}; start again without --resume (--replace), or restore the file",
            pj.display()
        )));
    }
    if p.scenario != scenario {
        let build =
            |s: &str| s.lines().find(|l| l.starts_with("# sflam ")).unwrap_or("").trim_start_matches("# ").to_string();
        return Err(Error::Input(format!(
            "{}: the checkpoint was made by {}, this is {}; results are reproducible per build, so resume with the same one",
            pj.display(),
            build(&p.scenario),
            build(scenario)
        )));
    }
    let dir = root.join(&p.dir);
    let mut state = ModelState { global: t.load(&dir.join("global.bpk"))?, local: Default::default() };
    // One pass over the folder: per-device models and kept optimizer states.
    let (mut locals, mut kept) = (Vec::<(u32, PathBuf)>::new(), Vec::new());
    for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(d) = name.strip_prefix("local-").and_then(|n| n.strip_suffix(".bpk")?.parse().ok()) {
            locals.push((d, e.path()));
        }
        let Some(key) = name.strip_prefix("optimizer-").and_then(|n| n.strip_suffix(".bpk")) else { continue };
        let parsed = key.split_once('-').and_then(|(d, h)| Some((d.parse::<u32>().ok()?, training::Half::named(h)?)));
        let key = parsed.ok_or_else(|| {
            Error::Input(format!("{}: not an optimizer state's name (optimizer-DEVICE-HALF.bpk)", e.path().display()))
        })?;
        kept.push((key, std::fs::read(e.path()).map_err(|err| Error::io(e.path(), err))?));
    }
    locals.sort();
    for (d, path) in locals {
        state.local.insert(d, t.load(&path)?);
    }
    kept.sort_by_key(|(key, _)| *key);
    t.set_kept_optimizers(kept);
    Ok((state, p))
}
