//! A simulation on a thread of its own that Python steps through: at every
//! round boundary of every cell the thread hands its allocation problem to
//! Python and waits for the decision (`sflam.run(allocator=...)`, the
//! Gymnasium environment); without a policy it runs the scenario's
//! allocators. The thread never touches Python; Python waits with the GIL
//! released and checks for Ctrl-C while it waits.
//!
//! Stopping (Ctrl-C, a policy that raised, `close`) sets a flag the run
//! checks at each decision, so it ends with an error there: no output is
//! committed (an output folder stays as it was) and nothing is returned as
//! a whole run.

use crate::arrow::ArrowTable;
use crate::problem::{Answer, Problem, decision_of};
use crate::scenario::Scenario;
use crate::{SflamError, py_err, to_py};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use pyo3::prelude::*;
use sflam::alloc::{Allocator, Decision as CoreDecision, Exclusion, Problem as CoreProblem, planned};
use sflam::engine::{DecisionHook, RoundHook};
use sflam::run::{AllocatorFactory, Observer, RunOptions};
use sflam::sim::rng::Rng;
use sflam::trace::{ArrowSink, RoundRow, Summary};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// From the simulation to Python.
enum Up {
    Problem(Box<CoreProblem>, u32, u64),
    Round(Box<RoundRow>),
    Done(Box<sflam::Result<Outcome>>),
}

/// From Python to the simulation: a checked decision, or stop.
enum Down {
    Answer(Answer),
    Stop,
}

struct Outcome {
    summary: Summary,
    tables: Vec<sflam::trace::memory::Table>,
    dir: Option<PathBuf>,
}

/// The stop flag and, when asked, each round's row on its way up.
struct Watch {
    stop: Arc<AtomicBool>,
    rounds: Option<Sender<Up>>,
}

impl Observer for Watch {
    fn decision(&self, _cell: u32, _p: &CoreProblem, _d: &CoreDecision) -> sflam::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(sflam::Error::Failure {
                what: "run".into(),
                detail: "stopped from Python (Ctrl-C, a policy that raised, or close)".into(),
            });
        }
        Ok(())
    }
    fn round(&self, r: &RoundRow) {
        if let Some(tx) = &self.rounds {
            let _ = tx.send(Up::Round(Box::new(r.clone())));
        }
    }
}

/// The allocator of one cell: asks Python.
struct Remote {
    cell: u32,
    up: Sender<Up>,
    down: Arc<Mutex<Receiver<Down>>>,
    stop: Arc<AtomicBool>,
}

impl Allocator for Remote {
    fn decide(&mut self, p: &CoreProblem, rng: &mut Rng) -> CoreDecision {
        let seed = rand::RngCore::next_u64(rng);
        let nobody = || CoreDecision { iterations: 1, ..Default::default() }.finish(p, |_| Exclusion::NotChosen);
        if self.stop.load(Ordering::Relaxed) || self.up.send(Up::Problem(Box::new(p.clone()), self.cell, seed)).is_err()
        {
            self.stop.store(true, Ordering::Relaxed);
            return nobody();
        }
        let answer = self.down.lock().map(|rx| rx.recv());
        match answer {
            Ok(Ok(Down::Answer(Answer::Picks(picks)))) => decision_of(p, &picks),
            Ok(Ok(Down::Answer(Answer::Whole(d)))) => d,
            _ => {
                // Python stopped or went away: the observer ends the run.
                self.stop.store(true, Ordering::Relaxed);
                nobody()
            }
        }
    }

    fn in_parallel(&self) -> bool {
        false
    }
}

/// A running simulation.
#[pyclass(module = "sflam")]
pub struct Session {
    up: Receiver<Up>,
    down: Sender<Down>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pending: Option<Py<Problem>>,
    finished: bool,
}

/// A finished run: its summary and its tables in Arrow memory (none when
/// written to a folder: then `dir`).
#[pyclass(module = "sflam", frozen)]
pub struct Finished {
    summary: Summary,
    tables: Mutex<Vec<sflam::trace::memory::Table>>,
    #[pyo3(get)]
    dir: Option<PathBuf>,
}

#[pymethods]
impl Finished {
    /// `summary.json` as a dict.
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.summary)
    }

    /// The tables, each once: (name, `ArrowTable`).
    fn take_tables(&self) -> Vec<(&'static str, ArrowTable)> {
        let tables = std::mem::take(&mut *self.tables.lock().expect("not poisoned"));
        tables
            .into_iter()
            .filter_map(|t| {
                let schema = t.schema()?;
                Some((t.name, ArrowTable::new(t.name, schema, t.batches)))
            })
            .collect()
    }
}

#[pymethods]
impl Session {
    /// Starts `scenario` on its own thread. `policy`: Python decides every
    /// round (`decide`); `replan`: its decisions go through sflam's round
    /// planner (queue-aware re-planning, sync rounds' free RBs filled);
    /// `rounds`: each round's row comes up as it ends; `out`: the run is
    /// written there (as `sflam run -o`), else kept in memory.
    #[new]
    #[pyo3(signature = (scenario, out = None, policy = false, replan = false, rounds = false))]
    fn new(
        scenario: &Bound<'_, Scenario>,
        out: Option<PathBuf>,
        policy: bool,
        replan: bool,
        rounds: bool,
    ) -> PyResult<Session> {
        let mut s = scenario.get().core.clone();
        let (up_tx, up_rx) = unbounded::<Up>();
        let (down_tx, down_rx) = unbounded::<Down>();
        let stop = Arc::new(AtomicBool::new(false));
        let allocator: Option<AllocatorFactory> = policy.then(|| {
            let (up, down, stop) = (up_tx.clone(), Arc::new(Mutex::new(down_rx)), stop.clone());
            let next_cell = AtomicU32::new(0);
            Arc::new(move || {
                let remote: Box<dyn Allocator> = Box::new(Remote {
                    cell: next_cell.fetch_add(1, Ordering::Relaxed),
                    up: up.clone(),
                    down: down.clone(),
                    stop: stop.clone(),
                });
                if replan { planned(remote) } else { remote }
            }) as AllocatorFactory
        });
        let watch = Arc::new(Watch { stop: stop.clone(), rounds: rounds.then(|| up_tx.clone()) });
        if let Some(dir) = &out {
            s.run.output_dir = dir.display().to_string();
        }
        let thread = std::thread::Builder::new()
            .name("sflam-session".into())
            .spawn(move || {
                let outcome = run(&s, out.is_some(), allocator, watch);
                let _ = up_tx.send(Up::Done(Box::new(outcome)));
            })
            .map_err(|e| SflamError::new_err(format!("cannot start the simulation thread: {e}")))?;
        Ok(Session { up: up_rx, down: down_tx, stop, thread: Some(thread), pending: None, finished: false })
    }

    /// Waits for what the simulation has next: `("problem", Problem)` (answer
    /// it with `decide`), `("round", dict)` (a round's row, when asked for),
    /// `("done", Finished)`. A failed run raises its error.
    fn next<'py>(&mut self, py: Python<'py>) -> PyResult<(&'static str, Bound<'py, PyAny>)> {
        if self.finished {
            return Err(SflamError::new_err("the run has finished"));
        }
        if self.pending.is_some() {
            return Err(SflamError::new_err("a problem is waiting for its decision (call decide first)"));
        }
        let msg = loop {
            let up = &self.up;
            match py.detach(|| up.recv_timeout(Duration::from_millis(50))) {
                Ok(m) => break m,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        self.shutdown(py);
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finished = true;
                    return Err(SflamError::new_err("the simulation thread ended without a result"));
                }
            }
        };
        match msg {
            Up::Problem(p, cell, seed) => {
                let obj = Py::new(py, Problem { core: *p, cell, seed })?;
                self.pending = Some(obj.clone_ref(py));
                Ok(("problem", obj.into_bound(py).into_any()))
            }
            Up::Round(r) => Ok(("round", to_py(py, &*r)?)),
            Up::Done(outcome) => {
                self.finished = true;
                self.join(py);
                let o = (*outcome).map_err(py_err)?;
                let f = Finished { summary: o.summary, tables: Mutex::new(o.tables), dir: o.dir };
                Ok(("done", Bound::new(py, f)?.into_any()))
            }
        }
    }

    /// Answers the waiting problem. The decision is checked first; a bad
    /// one raises `DecisionError` and the problem stays waiting.
    fn decide(&mut self, decision: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(p) = self.pending.as_ref() else {
            return Err(SflamError::new_err("no problem is waiting for a decision"));
        };
        let answer = p.get().answer(decision)?;
        self.pending = None;
        self.down.send(Down::Answer(answer)).map_err(|_| SflamError::new_err("the simulation has stopped"))
    }

    /// Stops the run (if still running) and waits for its thread; what it
    /// had written is discarded.
    fn close(&mut self, py: Python<'_>) {
        self.shutdown(py);
    }
}

impl Session {
    fn shutdown(&mut self, py: Python<'_>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.down.send(Down::Stop);
        self.pending = None;
        if !self.finished {
            // Drain until the run reports its end (the error the stop caused).
            let up = &self.up;
            py.detach(|| {
                while let Ok(m) = up.recv() {
                    if matches!(m, Up::Done(_)) {
                        break;
                    }
                }
            });
            self.finished = true;
        }
        self.join(py);
    }

    fn join(&mut self, py: Python<'_>) {
        if let Some(t) = self.thread.take() {
            let _ = py.detach(|| t.join());
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.thread.is_some() {
            Python::attach(|py| self.shutdown(py));
        }
    }
}

/// The run itself, on the session's thread.
fn run(
    s: &sflam::config::Scenario,
    to_dir: bool,
    allocator: Option<AllocatorFactory>,
    watch: Arc<Watch>,
) -> sflam::Result<Outcome> {
    if to_dir {
        let opts = sflam::run::with_learner(&RunOptions {
            allocator,
            observer: Some(watch as Arc<dyn Observer>),
            ..Default::default()
        });
        let (dir, summary) = sflam::run::run_to_dir(s, &opts)?;
        return Ok(Outcome { summary, tables: Vec::new(), dir: Some(dir) });
    }
    let mut sink = ArrowSink::new(s.run.events_trace, s.run.bcd_trace);
    let learner = sflam::run::learner_of(s, Some(sflam::run::co_learner))?;
    let w2 = watch.clone();
    let on_decision: DecisionHook<'_> = Box::new(move |cell, p, d| watch.decision(cell, p, d));
    let on_round: RoundHook<'_> = Box::new(move |r| w2.round(r));
    let summary =
        sflam_core::run::simulate_with(s, &mut sink, learner, Some(on_decision), Some(on_round), allocator.as_ref())?;
    let tables = sink.tables().ok_or_else(|| sflam::Error::Trace("the run's tables were not finished".into()))?;
    Ok(Outcome { summary, tables, dir: None })
}
