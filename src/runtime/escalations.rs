//! Escalations: delivery came back because context was missing. Two ways
//! in, one table: a person says so (`POST /handoffs/{id}/escalations`, who
//! and a note, also kept as a note in the handoff's audit trail), or a rule
//! does (`escalate when` became true on an event, recorded in that event's
//! write job). The health report counts both.

use std::sync::Arc;

use jiff::Timestamp;

use crate::compile::WorkflowSet;
use crate::eval::{Ctx, Record, RecordState, Status};
use crate::health::EscalationFact;
use crate::runtime::store::{NewNote, Store, StoreError, StoreExt, WriteTx};

/// Records that `who` escalated the handoff `id`, with `note`, at `now`:
/// the escalation and a note of kind `escalation`, in one write job.
/// `None` when there is no such handoff.
pub async fn escalate(
    store: &Arc<dyn Store>,
    id: String,
    who: String,
    note: String,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    store
        .write(move |tx| {
            if tx.load_instance(&id)?.is_none() {
                return Ok(None);
            }
            let seq = tx.record_escalation(&EscalationFact {
                handoff_id: id.clone(),
                at: now,
                source: "person".into(),
                who: who.clone(),
                reason: note.clone(),
            })?;
            tx.add_note(&NewNote {
                handoff_id: id,
                kind: "escalation".into(),
                who,
                at: now,
                text: note,
                data: None,
            })?;
            Ok(Some(seq))
        })
        .await
}

/// Whether some handoff on `object` declares `escalate when`: only then is
/// the record's state before the event worth keeping.
pub fn declared_for(set: &WorkflowSet, object: usize) -> bool {
    set.handoffs()
        .iter()
        .any(|h| h.object == object && h.escalate_when.is_some())
}

/// Records an escalation for every handoff of the record that has gone
/// down the normal path (proceeded or done) and whose `escalate when`
/// became true with this event (it was not true before it). The reason is
/// the condition as written. Returns how many were recorded.
pub fn by_rule(
    tx: &mut dyn WriteTx,
    set: &WorkflowSet,
    object: usize,
    before: Option<&RecordState>,
    after: &RecordState,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let mut recorded = 0;
    for h in set.handoffs().iter().filter(|h| h.object == object) {
        let Some(cond) = &h.escalate_when else {
            continue;
        };
        let Some(inst) = after.handoffs.get(&h.name) else {
            continue;
        };
        if !matches!(inst.status, Status::Proceeded | Status::Done) {
            continue;
        }
        let holds = |state: &RecordState| {
            Ctx {
                record: Record::from_slice(&state.values),
                now,
                calendar: set.calendar(),
                roles: &inst.roles,
                missing: &[],
                exceptions: &[],
            }
            .truth(&cond.expr)
        };
        if holds(after) && !before.is_some_and(holds) {
            tx.record_escalation(&EscalationFact {
                handoff_id: inst.id.clone(),
                at: now,
                source: "rule".into(),
                who: "rule".into(),
                reason: cond.text.clone(),
            })?;
            recorded += 1;
        }
    }
    Ok(recorded)
}
