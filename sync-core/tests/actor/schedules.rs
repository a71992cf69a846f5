//! The property test: random schedules of messages, storage answers, other processes'
//! changes, server-side edits and phones leaving and moving, run on the simulation
//! (`sim.rs`), and the schedules it found that once broke an invariant, kept as tests of their
//! own. Its regressions file is `tests/proptest-regressions/schedules.txt`.

use automerge::ReadDoc;
use fieldsync_core::actor::Outcome;
use proptest::prelude::*;

use crate::sim::Sim;

#[derive(Debug, Clone)]
enum Step {
    Edit(usize),
    Up(usize),
    Down(usize),
    Store(usize, bool),
    CatchUp(usize),
    Unload(usize),
    Move(usize, usize),
    Leave(usize),
    ServerEdit(usize),
    Tick,
}

const PROCESSES: usize = 3;
const PHONES: usize = 4;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..PHONES).prop_map(Step::Edit),
        6 => (0..PHONES).prop_map(Step::Up),
        6 => (0..PHONES).prop_map(Step::Down),
        4 => (0..PROCESSES, any::<bool>()).prop_map(|(p, ok)| Step::Store(p, ok)),
        2 => (0..PROCESSES).prop_map(Step::CatchUp),
        1 => (0..PROCESSES).prop_map(Step::Unload),
        1 => (0..PHONES, 0..PROCESSES).prop_map(|(ph, p)| Step::Move(ph, p)),
        1 => (0..PHONES).prop_map(Step::Leave),
        1 => (0..PROCESSES).prop_map(Step::ServerEdit),
        1 => Just(Step::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random schedules of messages, storage answers, other processes' changes, server-side
    /// edits and phones leaving and moving: the invariants hold at every step, and once
    /// storage works every replica converges.
    #[test]
    fn every_schedule_keeps_the_invariants(steps in prop::collection::vec(step(), 1..120)) {
        let sim = run_schedule(&steps);
        // Every honest phone's own changes are stored.
        let stored = sim.store.document();
        for phone in sim.honest() {
            for change in phone.doc.get_changes(&[]) {
                prop_assert!(stored.get_change_by_hash(&change.hash()).is_some());
            }
        }
    }
}

/// Runs `steps` with four phones (one hostile) on three processes, the invariants checked at
/// every step; then brings every phone back and checks that all converge.
fn run_schedule(steps: &[Step]) -> Sim {
    let mut sim = Sim::new(PROCESSES);
    sim.phone("peksos-ani", false);
    sim.phone("peksos-citra", false);
    sim.phone("peksos-eka", false);
    sim.phone("peksos-dodi", true);
    for phone in 0..PHONES {
        sim.connect(phone, phone % PROCESSES);
    }
    for step in steps.iter().cloned() {
        match step {
            Step::Edit(phone) => sim.phone_edits(phone),
            Step::Up(phone) => sim.deliver_up(phone),
            Step::Down(phone) => sim.deliver_down(phone),
            Step::Store(process, ok) => {
                let outcome = if ok {
                    Outcome::Committed
                } else {
                    Outcome::Failed
                };
                sim.answer(process, outcome);
            }
            Step::CatchUp(process) => sim.catch_up(process),
            Step::Unload(process) => sim.unload(process),
            Step::Move(phone, process) => sim.connect(phone, process),
            Step::Leave(phone) => sim.leave(phone),
            Step::ServerEdit(process) => sim.server_edit(process),
            Step::Tick => sim.tick(),
        }
        sim.assert_contained();
    }
    // Storage works again and every phone is back on some process.
    for phone in 0..PHONES {
        if sim.phones[phone].at.is_none() {
            sim.connect(phone, phone % PROCESSES);
        }
    }
    sim.settle();
    sim.assert_converged();
    sim
}

/// Found by the property test (2026-12-02), while mending the one below.
#[test]
fn an_empty_phone_gets_the_document_after_an_unload_and_a_failed_write() {
    use Step::*;
    run_schedule(&[
        Up(1),
        Move(0, 1),
        Up(0),
        Down(0),
        Up(0),
        Unload(1),
        Store(1, false),
        Move(0, 2),
    ]);
}

/// Found by the property test (2026-12-02): the network never settled after this schedule.
#[test]
fn a_server_edit_after_an_unload_settles() {
    use Step::*;
    run_schedule(&[
        Up(3),
        Up(0),
        Down(0),
        Up(0),
        Store(0, true),
        Down(3),
        Down(3),
        Edit(3),
        Up(3),
        Up(3),
        Unload(0),
        ServerEdit(0),
    ]);
}
