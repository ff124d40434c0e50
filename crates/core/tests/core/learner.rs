//! The learner's contract with the round controller: each device's report
//! lands in that device's `device_rounds` row, the round's loss and f16
//! count derive from them, and a report for a device that did not finish,
//! or a second one for a device, is refused at a named checkpoint.

use sflam_core::config::load_scenario_str;
use sflam_core::trace::VecSink;
use std::path::Path;

/// A learner that reports each finished device's loss as its index and
/// its index mod 3 as its steps taken again; with `stranger`, also a
/// device that did not finish the round; with `twice`, the first device
/// again.
struct Reporter {
    devices: usize,
    stranger: bool,
    twice: bool,
}

impl sflam_core::engine::Learner for Reporter {
    fn data(&self) -> (Vec<u64>, Vec<Vec<u32>>) {
        (vec![60; self.devices], vec![vec![6; 10]; self.devices])
    }

    fn round(
        &mut self,
        _round: u32,
        finished: &[sflam_core::engine::Finished],
        _aggregation: sflam_core::engine::Aggregation,
    ) -> sflam_core::Result<sflam_core::engine::Learned> {
        use sflam_core::engine::DeviceLearned;
        let mut devices: Vec<DeviceLearned> = finished
            .iter()
            .map(|f| DeviceLearned { device: f.device, loss: f.device.0 as f64, loss_scale_halvings: f.device.0 % 3 })
            .collect();
        if self.stranger {
            let outside = (0..self.devices as u32).find(|&d| finished.iter().all(|f| f.device.0 != d)).unwrap();
            devices.push(DeviceLearned {
                device: sflam_core::device::DeviceId(outside),
                loss: 1.0,
                loss_scale_halvings: 0,
            });
        }
        if self.twice && !devices.is_empty() {
            devices.push(devices[0]);
        }
        Ok(sflam_core::engine::Learned { accuracy: None, devices })
    }
}

#[test]
fn a_learners_device_reports_land_in_their_own_rows_and_strangers_and_repeats_are_refused() {
    // Some devices straggle (a 6 s deadline, `fixed` at p_max), so finished and
    // unfinished rows sit side by side.
    let s = load_scenario_str(
        "[run]\nrounds = 3\ndeadline_s = 6.0\ncandidates = 20\n[network]\nrb_count = 10\n[allocator]\nname = \"fixed\"\n",
        Path::new("learner.toml"),
        &[],
    )
    .unwrap();
    let n = s.devices.count as usize;
    let mut sink = VecSink::default();
    let learner = Box::new(Reporter { devices: n, stranger: false, twice: false });
    sflam_core::run::simulate(&s, &mut sink, Some(learner), None, None).unwrap();
    let finished = sink.device_rounds.iter().filter(|d| d.outcome == sflam_core::trace::Outcome::Finished).count();
    assert!(finished > 0 && finished < sink.device_rounds.len(), "{finished} of {}", sink.device_rounds.len());
    for d in &sink.device_rounds {
        let done = d.outcome == sflam_core::trace::Outcome::Finished;
        assert_eq!(d.train_loss, done.then_some(d.device as f64), "{d:?}");
        assert_eq!(d.loss_scale_halvings, done.then_some(d.device % 3), "{d:?}");
    }
    for r in &sink.rounds {
        let mine: Vec<u32> = sink
            .device_rounds
            .iter()
            .filter(|d| d.round == r.round && d.outcome == sflam_core::trace::Outcome::Finished)
            .map(|d| d.device)
            .collect();
        let mut sorted = mine.clone();
        sorted.sort_unstable();
        let mean = (!sorted.is_empty()).then(|| sorted.iter().map(|&d| d as f64).sum::<f64>() / sorted.len() as f64);
        assert_eq!(r.loss, mean, "round {}", r.round);
        assert_eq!(r.loss_scale_halvings, Some(mine.iter().map(|d| d % 3).sum()), "round {}", r.round);
    }

    let learner = Box::new(Reporter { devices: n, stranger: true, twice: false });
    let e = sflam_core::run::simulate(&s, &mut VecSink::default(), Some(learner), None, None).unwrap_err().to_string();
    assert!(e.contains("round.learner") && e.contains("did not finish round 0"), "{e}");
    let learner = Box::new(Reporter { devices: n, stranger: false, twice: true });
    let e = sflam_core::run::simulate(&s, &mut VecSink::default(), Some(learner), None, None).unwrap_err().to_string();
    assert!(e.contains("round.learner") && e.contains("twice in round"), "{e}");
}
