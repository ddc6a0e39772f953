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
//! So a CRM request queues for a turn on each of its records when it
//! arrives (all of them at once, so a batch keeps its place on every
//! record) and gives the turns back once its job is queued; a later
//! request for one of those records waits for its turn. A generic event
//! queues only on records someone is already queued on
//! ([`RecordTurns::take_if_queued`]): it never reads the CRM, so with
//! nobody ahead it goes straight on. Tickets are served in the order they
//! were handed out, and a request gets all of its tickets under one lock,
//! so two requests sharing records queue in the same order on each and
//! neither can hold a turn the other waits for while waiting for one it
//! holds.
//!
//! In this process only: replicas sharing a database (the next wave) need
//! the store to order them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// A record: (object, record id).
pub type RecordKey = (String, String);

/// The records with a turn taken or awaited.
#[derive(Debug, Default)]
pub struct RecordTurns {
    /// A record is here while someone holds or waits for its turn.
    records: Mutex<HashMap<RecordKey, Record>>,
}

/// One record's queue: numbered tickets, served in order.
#[derive(Debug, Default)]
struct Record {
    /// The ticket the next request gets.
    next: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets given up before their turn (a cancelled request): skipped.
    abandoned: BTreeSet<u64>,
    /// Woken when `serving` moves.
    moved: Arc<Notify>,
}

/// Turns held (or still awaited) on some records, given back when dropped.
#[derive(Debug)]
pub struct Turns<'a> {
    turns: &'a RecordTurns,
    tickets: Vec<(RecordKey, u64, Arc<Notify>)>,
}

impl Drop for Turns<'_> {
    /// Gives every turn back, or gives up the tickets still waiting (a
    /// cancelled request), and forgets records nobody else is queued on.
    fn drop(&mut self) {
        let mut records = self.turns.records();
        for (key, ticket, _) in self.tickets.drain(..) {
            let Some(record) = records.get_mut(&key) else {
                continue;
            };
            if ticket == record.serving {
                record.serving += 1;
                while record.abandoned.remove(&record.serving) {
                    record.serving += 1;
                }
                record.moved.notify_waiters();
            } else if ticket > record.serving {
                record.abandoned.insert(ticket);
            }
            if record.serving == record.next {
                records.remove(&key);
            }
        }
    }
}

impl RecordTurns {
    fn records(&self) -> MutexGuard<'_, HashMap<RecordKey, Record>> {
        // Every change to the map is made whole under the lock: a panic
        // elsewhere while it was locked leaves it consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues for a turn on each of `keys` (duplicates count once), all at
    /// once, then waits for them: whoever queued on one of them before
    /// goes first. Hold the result until the request's job is queued.
    pub async fn take(&self, keys: impl IntoIterator<Item = RecordKey>) -> Turns<'_> {
        let keys: BTreeSet<RecordKey> = keys.into_iter().collect();
        let turns = self.queue(keys);
        turns.wait().await;
        turns
    }

    /// Like [`RecordTurns::take`], but only on the records someone else
    /// is queued on now, and at once (no wait) when there are none: the
    /// generic hook never reads the CRM, so it need not queue on a record
    /// nobody is reading.
    pub async fn take_if_queued<'k>(
        &self,
        keys: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> Turns<'_> {
        let keys: BTreeSet<RecordKey> = {
            let records = self.records();
            if records.is_empty() {
                BTreeSet::new()
            } else {
                keys.into_iter()
                    .map(|(o, r)| (o.to_string(), r.to_string()))
                    .filter(|k| records.contains_key(k))
                    .collect()
            }
        };
        self.take(keys).await
    }

    /// Tickets on every record of `keys`, under one lock: requests queue
    /// in one order on all the records they share, so none waits for a
    /// turn another holds while that one waits for a turn it holds.
    fn queue(&self, keys: BTreeSet<RecordKey>) -> Turns<'_> {
        let mut records = self.records();
        let tickets = keys
            .into_iter()
            .map(|key| {
                let record = records.entry(key.clone()).or_default();
                let ticket = record.next;
                record.next += 1;
                (key, ticket, record.moved.clone())
            })
            .collect();
        Turns {
            turns: self,
            tickets,
        }
    }

    /// Whose turn it is on `key`, if anyone is queued.
    fn serving(&self, key: &RecordKey) -> Option<u64> {
        self.records().get(key).map(|r| r.serving)
    }

    /// How many requests hold or await the turn of `object` `record_id`
    /// (tests wait on it).
    pub fn queued(&self, object: &str, record_id: &str) -> usize {
        self.records()
            .get(&(object.to_string(), record_id.to_string()))
            .map_or(0, |r| {
                (r.next - r.serving) as usize - r.abandoned.range(r.serving..).count()
            })
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
    /// Waits until it is this request's turn on every record.
    async fn wait(&self) {
        for (key, ticket, moved) in &self.tickets {
            loop {
                let notified = moved.notified();
                tokio::pin!(notified);
                // Registered before the check: a move between the check and
                // the wait still wakes it.
                notified.as_mut().enable();
                if self.turns.serving(key).is_none_or(|s| s >= *ticket) {
                    break;
                }
                notified.await;
            }
        }
    }

    /// How many records this holds a turn on.
    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    /// True when this holds no turn.
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
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
        let mut generic = Box::pin(turns.take_if_queued([("deal", "1")]));
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
        drop(tokio::time::timeout(BOUND, generic).await.unwrap());
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
        let none = tokio::time::timeout(BOUND, turns.take_if_queued([("deal", "1")]))
            .await
            .unwrap();
        assert!(none.is_empty() && turns.is_empty());
    }

    /// A batch queues on all its records when it arrives: a later request
    /// for a record of the batch that nobody holds yet still goes after it.
    #[tokio::test]
    async fn a_batch_keeps_its_place_on_every_record_while_it_waits() {
        let turns = RecordTurns::default();
        let reading = turns.take([key("A")]).await;
        let mut batch = Box::pin(turns.take([key("A"), key("B")]));
        assert!(pending(batch.as_mut()), "behind the read of A");
        let mut later = Box::pin(turns.take([key("B")]));
        assert!(pending(later.as_mut()), "B is the batch's first");

        drop(reading);
        let batch = tokio::time::timeout(BOUND, batch).await.unwrap();
        assert!(pending(later.as_mut()), "the batch holds B now");
        drop(batch);
        drop(tokio::time::timeout(BOUND, later).await.unwrap());
        assert!(turns.is_empty());
    }

    /// A request that gives up its place is skipped: the one behind it
    /// gets the turn, and nothing stays queued.
    #[tokio::test]
    async fn a_place_given_up_in_the_middle_is_skipped() {
        let turns = RecordTurns::default();
        let first = turns.take([key("1")]).await;
        let mut gone = Box::pin(turns.take([key("1")]));
        assert!(pending(gone.as_mut()));
        let mut third = Box::pin(turns.take([key("1")]));
        assert!(pending(third.as_mut()));
        assert_eq!(turns.queued("deal", "1"), 3);
        drop(gone);
        assert_eq!(turns.queued("deal", "1"), 2);
        drop(first);
        drop(tokio::time::timeout(BOUND, third).await.unwrap());
        assert!(turns.is_empty());
    }
}
