//! Arbitrary bytes as a CRM event → `Event::decode` then `eval::step`
//! against the bundled `workflows/`, twice in a row on the carried state:
//! nothing may panic, whatever a CRM sends. A decode error is a fine
//! answer; a panic is a bug.

#![no_main]

use std::sync::OnceLock;

use handoff::compile::WorkflowSet;
use handoff::eval::{self, Event, State};
use libfuzzer_sys::fuzz_target;

fn workflows() -> &'static WorkflowSet {
    static SET: OnceLock<WorkflowSet> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        match handoff::compile::load(&[dir]) {
            Ok((set, _)) => set,
            Err(e) => panic!("workflows/ does not load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let set = workflows();
    let Ok(event) = Event::decode(set, data) else {
        return;
    };
    let now = event
        .occurred_at
        .unwrap_or_else(|| "2026-11-20T15:04:05Z".parse().expect("a timestamp"));
    let (state, _) = eval::step(set, State::default(), &event, now);
    // The same event again is a retry (when it has an id): nothing new.
    let (_, again) = eval::step(set, state, &event, now);
    if !event.id.is_empty() {
        assert!(again.duplicate, "a retried event was not taken for one");
    }
});
