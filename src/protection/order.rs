//! Arrival order for the Tezos high watermarks, in memory: no I/O.
//!
//! Signing runs concurrently (on rayon, on the blocking pool, or on an HSM session) and ends
//! in any order. Without an order, a request at level 11 that finished signing first would
//! move the mark and the request at level 10 that arrived before it would be refused (issue
//! 19: "a request is refused because a later level of the same key and kind, which arrived
//! after it, committed first").
//!
//! [`ArrivalOrder`] gives each consensus request of one mark, one (chain id, public key hash,
//! kind), a place in line when it enters the service, before it is signed. The request signs
//! at once, in parallel with the others, and then waits in [`Place::wait_turn`] until every
//! request of its mark that arrived before it has been recorded or has given up. So the
//! requests of one mark reach the protection store in the order they arrived, and a request
//! whose level is above every level that arrived before it is never refused by one that
//! arrived after it. Requests of other marks never wait for each other.
//!
//! The order holds within one process. Across instances that share one database the stored
//! mark decides, as it always did.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::chain::tezos::payload::ConsensusKind;

/// One high watermark's identity: (chain id, public key hash, kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MarkKey {
    /// Chain id (4 bytes, from the payload at offset 1).
    pub chain_id: [u8; 4],
    /// Baker's public key hash, base58 (`tz1…`–`tz5…`).
    pub pkh: String,
    /// Block, preattestation or attestation.
    pub kind: ConsensusKind,
}

/// The requests of one mark that have a place and have not finished.
struct Lane {
    /// The place the next arrival gets.
    next: u64,
    /// Every place below this one has finished; this one may go (broadcast to the waiters).
    turn: watch::Sender<u64>,
    /// Places at or above `turn` that finished out of order (gave up before their turn).
    finished_early: BTreeSet<u64>,
}

/// The lines of every mark with requests in flight. A mark's line is removed when its last
/// request finishes, so memory follows the requests in flight, not the keys served.
#[derive(Default)]
pub struct ArrivalOrder {
    lanes: Mutex<HashMap<MarkKey, Lane>>,
}

impl std::fmt::Debug for ArrivalOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrivalOrder")
            .field("marks_in_flight", &self.marks_in_flight())
            .finish()
    }
}

impl ArrivalOrder {
    /// Gives the next place in `mark`'s line. Synchronous, so the order of the calls is the
    /// order of arrival.
    pub fn reserve(self: &Arc<Self>, mark: MarkKey) -> Place {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes.entry(mark.clone()).or_insert_with(|| Lane {
            next: 0,
            turn: watch::Sender::new(0),
            finished_early: BTreeSet::new(),
        });
        let seq = lane.next;
        lane.next += 1;
        let turn = lane.turn.subscribe();
        Place {
            order: Arc::clone(self),
            mark,
            seq,
            turn,
        }
    }

    /// How many marks have requests in flight (the lines not yet removed).
    pub fn marks_in_flight(&self) -> usize {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn finish(&self, mark: &MarkKey, seq: u64) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lane) = lanes.get_mut(mark) else {
            return;
        };
        let mut turn = *lane.turn.borrow();
        if seq != turn {
            lane.finished_early.insert(seq);
            return;
        }
        turn += 1;
        while lane.finished_early.remove(&turn) {
            turn += 1;
        }
        if turn == lane.next {
            // Nobody is left in line: forget the mark.
            lanes.remove(mark);
        } else {
            lane.turn.send_replace(turn);
        }
    }
}

/// A request's place in its mark's line, from [`ArrivalOrder::reserve`]. Dropping it (after
/// the record committed, or when the request gave up: a signing error, a timeout, a client
/// that went away) lets the next request of the mark go.
#[must_use = "a place lets the next request of its mark go only when it is dropped"]
pub struct Place {
    order: Arc<ArrivalOrder>,
    mark: MarkKey,
    seq: u64,
    turn: watch::Receiver<u64>,
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place")
            .field("mark", &self.mark)
            .field("seq", &self.seq)
            .finish()
    }
}

impl Place {
    /// Waits until every request of this mark that arrived before this one has finished.
    /// Returns at once for the first in line. Cancel-safe: dropping the future (or the place)
    /// keeps the line moving.
    pub async fn wait_turn(&mut self) {
        let seq = self.seq;
        // The sender lives in the lane as long as this place exists (the lane is removed only
        // when every place finished), so an error cannot happen; treat it as our turn.
        let _ = self.turn.wait_for(|turn| *turn >= seq).await;
    }

    /// This place's number in its mark's line (0 for the first arrival since the line was
    /// last empty).
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.order.finish(&self.mark, self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mark(pkh: &str) -> MarkKey {
        MarkKey {
            chain_id: [1, 2, 3, 4],
            pkh: pkh.to_string(),
            kind: ConsensusKind::Attestation,
        }
    }

    async fn gone_within(place: &mut Place, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), place.wait_turn())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn later_arrivals_wait_for_earlier_ones_of_their_mark_only() {
        let order = Arc::new(ArrivalOrder::default());
        let first = order.reserve(mark("tz1a"));
        let mut second = order.reserve(mark("tz1a"));
        let mut third = order.reserve(mark("tz1a"));
        let mut other = order.reserve(mark("tz1b"));
        assert_eq!((first.seq(), second.seq(), third.seq()), (0, 1, 2));
        assert!(
            gone_within(&mut other, 50).await,
            "another mark waits for nobody"
        );
        assert!(!gone_within(&mut third, 20).await);
        assert!(!gone_within(&mut second, 20).await);
        drop(first);
        assert!(gone_within(&mut second, 50).await);
        assert!(!gone_within(&mut third, 20).await);
        drop(second);
        assert!(gone_within(&mut third, 50).await);
        drop((third, other));
        assert_eq!(order.marks_in_flight(), 0, "empty lines are forgotten");
    }

    #[tokio::test]
    async fn a_place_that_gives_up_early_does_not_let_later_ones_overtake() {
        let order = Arc::new(ArrivalOrder::default());
        let first = order.reserve(mark("tz1a"));
        let second = order.reserve(mark("tz1a"));
        let mut third = order.reserve(mark("tz1a"));
        // The second gives up (a signing error) while the first is still signing.
        drop(second);
        assert!(
            !gone_within(&mut third, 30).await,
            "the third must still wait for the first"
        );
        drop(first);
        assert!(gone_within(&mut third, 50).await);
        let mut fourth = order.reserve(mark("tz1a"));
        assert!(!gone_within(&mut fourth, 20).await);
        drop(third);
        assert!(gone_within(&mut fourth, 50).await);
        drop(fourth);
        assert_eq!(order.marks_in_flight(), 0);
        // A fresh line starts at 0 again.
        assert_eq!(order.reserve(mark("tz1a")).seq(), 0);
    }

    #[tokio::test]
    async fn random_finishing_orders_release_in_arrival_order() {
        use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
        for seed in 0..200u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let order = Arc::new(ArrivalOrder::default());
            let n = rng.random_range(1..12);
            let mut places: Vec<Option<Place>> =
                (0..n).map(|_| Some(order.reserve(mark("tz1a")))).collect();
            // Each place either finishes after its turn came (recorded) or gives up at a
            // random moment; whenever a place's turn is observed, every earlier place must
            // have finished already.
            let mut finished = vec![false; n];
            let mut indices: Vec<usize> = (0..n).collect();
            indices.shuffle(&mut rng);
            for i in indices {
                // A place finished by a later one (below) has already been taken.
                let Some(mut place) = places[i].take() else {
                    continue;
                };
                if rng.random_bool(0.3) {
                    drop(place); // gave up
                } else {
                    if places[..i].iter().any(Option::is_some) {
                        assert!(
                            !gone_within(&mut place, 5).await,
                            "seed {seed}: went before an earlier arrival finished"
                        );
                    }
                    // Finish every earlier place first, as the real requests would.
                    for (j, earlier) in places.iter_mut().enumerate().take(i) {
                        if let Some(p) = earlier.take() {
                            drop(p);
                            finished[j] = true;
                        }
                    }
                    assert!(gone_within(&mut place, 50).await, "seed {seed}");
                    assert!(finished[..i].iter().all(|f| *f), "seed {seed}");
                    drop(place);
                }
                finished[i] = true;
            }
            assert_eq!(order.marks_in_flight(), 0, "seed {seed}");
        }
    }
}
