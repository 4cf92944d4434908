use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use userd_ports::ids::IdGenerator;

/// Snowflake-style ids: 41 bits of milliseconds since 2024-01-01, 10 bits of node, 12
/// bits of per-millisecond sequence.
///
/// The node is drawn at random when the process starts, so several processes sharing a
/// database almost never share one; the database's unique keys catch the rare clash and
/// the use cases retry with a fresh id.
#[derive(Debug)]
pub struct SnowflakeIds {
    node: u64,
    state: Mutex<(u64, u64)>,
}

const EPOCH_MILLIS: u64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
const NODE_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;

impl SnowflakeIds {
    pub fn new(node: u16) -> Self {
        SnowflakeIds {
            node: u64::from(node) & ((1 << NODE_BITS) - 1),
            state: Mutex::new((0, 0)),
        }
    }

    /// A generator with a random node id.
    pub fn with_random_node() -> Self {
        let mut bytes = [0u8; 2];
        // Without OS randomness the node falls back to the process id, which still
        // differs between processes on one host.
        let node = match getrandom::fill(&mut bytes) {
            Ok(()) => u16::from_le_bytes(bytes),
            Err(_) => (std::process::id() & 0xffff) as u16,
        };
        SnowflakeIds::new(node)
    }

    fn millis_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
            .saturating_sub(EPOCH_MILLIS)
    }
}

impl IdGenerator for SnowflakeIds {
    fn next_id(&self) -> String {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (last_millis, last_sequence) = *state;
        // Never go backwards: a clock step back keeps using the last millisecond.
        let mut millis = Self::millis_now().max(last_millis);
        let mut sequence = if millis == last_millis {
            last_sequence + 1
        } else {
            0
        };
        if sequence > SEQUENCE_MASK {
            // 4096 ids in one millisecond: borrow the next millisecond.
            millis += 1;
            sequence = 0;
        }
        *state = (millis, sequence);
        let id = ((millis & ((1 << 41) - 1)) << (NODE_BITS + SEQUENCE_BITS))
            | (self.node << SEQUENCE_BITS)
            | sequence;
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_increasing_and_fit_63_bits() {
        let ids = SnowflakeIds::new(7);
        let numbers: Vec<u64> = (0..20_000)
            .map(|_| ids.next_id().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "time-ordered");
        assert_eq!(numbers.iter().collect::<HashSet<_>>().len(), numbers.len());
        assert!(numbers.iter().all(|n| *n < (1 << 63)));
        assert!(numbers[0] > 1 << 22, "carries a timestamp");
    }

    #[test]
    fn different_nodes_never_collide() {
        let a = SnowflakeIds::new(1);
        let b = SnowflakeIds::new(2);
        let from_a: HashSet<String> = (0..5_000).map(|_| a.next_id()).collect();
        assert!((0..5_000).all(|_| !from_a.contains(&b.next_id())));
    }
}
