//! Arrival order per record across requests that wait before they queue.
//!
//! Events of one record apply in the order the writer runs their jobs, and
//! the writer runs jobs in the order they are queued. A CRM request may
//! read the record from the CRM's API before it queues its job (seconds,
//! when the API is slow); a later request for the same record that needs
//! no read would queue first and apply first. Per-field `occurred_at`
//! keeps the values right either way, but the audit order, and which event
//! saw a stage change, would not be the order the CRM sent them in.
//!
//! So a CRM request takes a turn on each of its records when it arrives
//! and gives it back once its job is queued; a later CRM request for one
//! of those records waits for the turn, and a generic event for it waits
//! behind the turn ([`RecordTurns::wait_behind`]) without taking one (the
//! generic hook never reads the CRM, so nothing needs to wait behind it).
//! Turns are fair (first come, first served), and taken in the records'
//! sorted order, so two requests sharing records cannot each hold one the
//! other waits for.
//!
//! In this process only: replicas sharing a database (the next wave) need
//! the store to order them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// A record: (object, record id).
pub type RecordKey = (String, String);

/// The records with a turn taken or awaited.
#[derive(Debug, Default)]
pub struct RecordTurns {
    /// A record is here while someone holds or waits for its turn.
    records: Mutex<HashMap<RecordKey, Record>>,
}

/// One record's turn and how many hold or await it.
#[derive(Debug, Default)]
struct Record {
    turn: Arc<tokio::sync::Mutex<()>>,
    people: usize,
}

/// Turns held on some records, given back when dropped.
#[derive(Debug)]
pub struct Turns<'a> {
    held: Vec<Held<'a>>,
}

/// One record's turn, held or awaited.
#[derive(Debug)]
struct Held<'a> {
    turns: &'a RecordTurns,
    key: RecordKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Held<'_> {
    /// Gives the turn back, and forgets the record when nobody else holds
    /// or awaits it. Also runs when a wait is cancelled (a dropped request).
    fn drop(&mut self) {
        let mut records = self.turns.records();
        drop(self.guard.take());
        if let Some(record) = records.get_mut(&self.key) {
            record.people -= 1;
            if record.people == 0 {
                records.remove(&self.key);
            }
        }
    }
}

impl RecordTurns {
    fn records(&self) -> MutexGuard<'_, HashMap<RecordKey, Record>> {
        // Every change to the map is one statement: a panic elsewhere while
        // it was locked leaves it consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a turn on each of `keys` (duplicates count once), waiting for
    /// whoever took one before. Hold the result until the request's job is
    /// queued.
    pub async fn take(&self, keys: impl IntoIterator<Item = RecordKey>) -> Turns<'_> {
        let sorted: BTreeSet<RecordKey> = keys.into_iter().collect();
        let mut held = Vec::with_capacity(sorted.len());
        for key in sorted {
            let turn = {
                let mut records = self.records();
                let record = records.entry(key.clone()).or_default();
                record.people += 1;
                record.turn.clone()
            };
            // Counted above and pushed before the wait, so a cancelled wait
            // still counts itself out.
            held.push(Held {
                turns: self,
                key,
                guard: None,
            });
            let guard = turn.lock_owned().await;
            if let Some(last) = held.last_mut() {
                last.guard = Some(guard);
            }
        }
        Turns { held }
    }

    /// Waits until every turn taken on `keys` before this call is given
    /// back, without taking one (and without waiting for records nobody
    /// holds a turn on).
    pub async fn wait_behind<'k>(&self, keys: impl IntoIterator<Item = (&'k str, &'k str)>) {
        let taken: BTreeSet<RecordKey> = {
            let records = self.records();
            if records.is_empty() {
                return;
            }
            keys.into_iter()
                .filter(|(o, r)| records.contains_key(&(o.to_string(), r.to_string())))
                .map(|(o, r)| (o.to_string(), r.to_string()))
                .collect()
        };
        if !taken.is_empty() {
            drop(self.take(taken).await);
        }
    }

    /// How many requests hold or await the turn of `object` `record_id`
    /// (tests wait on it).
    pub fn queued(&self, object: &str, record_id: &str) -> usize {
        self.records()
            .get(&(object.to_string(), record_id.to_string()))
            .map_or(0, |r| r.people)
    }

    /// How many records have a turn held or awaited.
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// True when no record has a turn held or awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Turns<'_> {
    /// How many records this holds a turn on.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when this holds no turn.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Waker};
    use std::time::Duration;

    /// Polls once: still waiting?
    fn pending<F: Future>(f: Pin<&mut F>) -> bool {
        f.poll(&mut Context::from_waker(Waker::noop())).is_pending()
    }

    fn key(r: &str) -> RecordKey {
        ("deal".to_string(), r.to_string())
    }

    /// Bounded: a wait that should end, ends within this.
    const BOUND: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_later_request_waits_for_the_turn_and_the_record_is_forgotten_after() {
        let turns = RecordTurns::default();
        let first = turns.take([key("1"), key("2"), key("1")]).await;
        assert_eq!(first.len(), 2, "a record named twice is one turn");

        let mut second = Box::pin(turns.take([key("2")]));
        assert!(pending(second.as_mut()), "the turn on D-2 is held");
        let mut generic = Box::pin(turns.wait_behind([("deal", "1")]));
        assert!(pending(generic.as_mut()));
        assert_eq!(
            turns.queued("deal", "1"),
            2,
            "the holder and the generic event"
        );
        // Another record is not held up.
        drop(
            tokio::time::timeout(BOUND, turns.take([key("3")]))
                .await
                .unwrap(),
        );

        drop(first);
        let second = tokio::time::timeout(BOUND, second).await.unwrap();
        tokio::time::timeout(BOUND, generic).await.unwrap();
        assert_eq!(turns.len(), 1, "only D-2, still held");
        drop(second);
        assert!(turns.is_empty());
    }

    #[tokio::test]
    async fn a_wait_given_up_forgets_the_record() {
        let turns = RecordTurns::default();
        let first = turns.take([key("1")]).await;
        let mut waiting = Box::pin(turns.take([key("1")]));
        assert!(pending(waiting.as_mut()));
        drop(waiting);
        drop(first);
        assert!(
            turns.is_empty(),
            "no entry left behind by the cancelled wait"
        );
    }

    #[tokio::test]
    async fn nobody_holding_a_turn_means_no_wait() {
        let turns = RecordTurns::default();
        tokio::time::timeout(BOUND, turns.wait_behind([("deal", "1")]))
            .await
            .unwrap();
        assert!(turns.is_empty());
    }
}
