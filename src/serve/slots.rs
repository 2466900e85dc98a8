//! Connection slots, shared fairly: at most `max_total` connections and `max_per_ip` from one
//! address. A connection that has asked for media with a valid token is *valued* and keeps its
//! slot; when the server is full, a new connection takes the slot of the oldest connection that
//! is not (an idle keep-alive, a slow handshake, a `/healthz` poller), from the same address
//! first when that address is over its share. So a thousand hostile connections cannot keep
//! TikTok's download out: its connection gets a slot, and once it names its media URL, keeps it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// The slot table.
#[derive(Debug)]
pub(crate) struct Slots {
    max_total: usize,
    max_per_ip: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// By id, that is by age: the oldest first.
    conns: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    valued: Arc<AtomicBool>,
    evict: CancellationToken,
}

/// One admitted connection's slot; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Set once the connection asked for media with a valid token.
    pub(crate) valued: Arc<AtomicBool>,
    /// Cancelled when another connection took this slot.
    pub(crate) evict: CancellationToken,
}

/// Why a connection got no slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Every slot (of the server, or of this address) holds a valued connection.
    Full,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// A slot for a new connection from `ip`, evicting an unvalued one when full.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip
            && !inner.evict_oldest(|e| e.ip == ip)
        {
            return Err(Refused::Full);
        }
        if inner.conns.len() >= self.max_total && !inner.evict_oldest(|_| true) {
            return Err(Refused::Full);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let valued = Arc::new(AtomicBool::new(false));
        let evict = CancellationToken::new();
        inner.conns.insert(
            id,
            Entry {
                ip,
                valued: valued.clone(),
                evict: evict.clone(),
            },
        );
        *inner.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            slots: self.clone(),
            id,
            valued,
            evict,
        })
    }

    /// Connections holding a slot now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .conns
            .len()
    }
}

impl Inner {
    /// Evicts the oldest unvalued connection that `pick` accepts; whether there was one.
    fn evict_oldest(&mut self, pick: impl Fn(&Entry) -> bool) -> bool {
        let victim = self
            .conns
            .iter()
            .find(|(_, e)| !e.valued.load(Ordering::Relaxed) && pick(e))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.remove(id);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(e) = self.conns.remove(&id) {
            e.evict.cancel();
            if let Some(n) = self.per_ip.get_mut(&e.ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&e.ip);
                }
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_full_server_evicts_the_oldest_unvalued_connection() {
        let slots = Slots::new(3, 10);
        let first = slots.admit(A).expect("1");
        let second = slots.admit(A).expect("2");
        first.valued.store(true, Ordering::Relaxed);
        let _third = slots.admit(B).expect("3");
        let fourth = slots.admit(B).expect("4 takes a slot");
        assert!(
            !first.evict.is_cancelled(),
            "valued connections keep theirs"
        );
        assert!(
            second.evict.is_cancelled(),
            "the oldest unvalued one gave it"
        );
        assert_eq!(slots.len(), 3);
        drop(second);
        assert_eq!(slots.len(), 3, "an evicted slot is not freed twice");
        drop(fourth);
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn one_address_over_its_share_evicts_its_own_first() {
        let slots = Slots::new(10, 2);
        let b = slots.admit(B).expect("b");
        let a1 = slots.admit(A).expect("a1");
        let _a2 = slots.admit(A).expect("a2");
        let _a3 = slots.admit(A).expect("a3");
        assert!(a1.evict.is_cancelled());
        assert!(!b.evict.is_cancelled(), "another address keeps its slot");
    }

    #[test]
    fn only_valued_connections_means_refusal() {
        let slots = Slots::new(2, 2);
        let x = slots.admit(A).expect("x");
        let y = slots.admit(B).expect("y");
        x.valued.store(true, Ordering::Relaxed);
        y.valued.store(true, Ordering::Relaxed);
        assert_eq!(slots.admit(A).err(), Some(Refused::Full));
    }
}
