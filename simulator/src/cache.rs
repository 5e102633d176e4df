//! The simulated caches: every cache instance of a machine (one per distinct level and set of
//! sharing CPUs), each holding data blocks in LRU order up to its capacity in bytes.
//!
//! An event declares its data set as accesses to blocks of arrays (array id, offset, bytes). A
//! block is resident where it was last used: an access by core `c` is served by the lowest of
//! `c`'s cache levels holding the block (L1: free, its cost is in the kernel's measured time),
//! else by memory, and costs that level's cycles per missed 64-byte line; the block then sits in
//! every level of `c` (inclusive fill). A write also drops the block from every cache `c` does
//! not use (invalidation), so a core that reads data another core wrote pays for it. Memory
//! freshly allocated by the writer (`Fresh`) costs nothing to fill: allocators hand a thread
//! memory it recently freed, already in its caches.
//!
//! Dirty lines in another core's private cache: a block written by core `w` stays modified in
//! `w`'s caches until another core reads it. When core `c` then finds it only in a cache it
//! shares with `w` (this machine's L3) while one of `w`'s own caches still holds it, the lines
//! come from `w`'s cache, not from the shared level: with a `remote_line` cost (this machine's
//! measured pass over lines another core just wrote) each such line costs that instead. The read
//! leaves the block clean (shared), so the next reader pays the shared level's cost. Topology
//! files with latencies give none (`None`): their access times already price a line by the
//! nearest cache the two cores share, or memory.
//!
//! Invariants: an instance's resident bytes never exceed its capacity after an access; `holders`
//! lists exactly the instances whose `lru` holds the key; `writer` names a block only while it
//! is modified (written, and not read by another core since).

use colored_runtime::topology::Machine;
use std::collections::{BTreeMap, HashMap};

/// Bytes per cache line.
pub const LINE: u64 = 64;
/// Blocks data sets are tracked in (the `penalty` benchmark's slice).
pub const BLOCK: u64 = 4096;

/// How an event uses a range of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Read,
    Write,
    /// Written into memory just allocated by this core.
    Fresh,
}

type Key = (u64, u64);

/// One cache instance.
struct Instance {
    level: u8,
    capacity: u64,
    used: u64,
    /// Last-use stamp -> block.
    lru: BTreeMap<u64, Key>,
    /// Block -> (stamp, bytes).
    resident: HashMap<Key, (u64, u64)>,
}

/// Misses of one access, in lines.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Served {
    /// Cycles the misses cost.
    pub cycles: f64,
    /// Lines not found in the core's L1.
    pub l1_misses: u64,
    /// Lines not found in its L1 or L2.
    pub l2_misses: u64,
}

impl std::ops::AddAssign for Served {
    fn add_assign(&mut self, o: Served) {
        self.cycles += o.cycles;
        self.l1_misses += o.l1_misses;
        self.l2_misses += o.l2_misses;
    }
}

pub struct Caches {
    instances: Vec<Instance>,
    /// Per core: its instances by increasing level.
    path: Vec<Vec<usize>>,
    /// Cycles per missed line served by a cache of level `k` (index `k`); past the end, memory.
    line_cost: Vec<f64>,
    memory_line: f64,
    /// Cycles per line served from another core's private cache where it is modified, when
    /// priced apart from the shared level (see the module doc).
    remote_line: Option<f64>,
    holders: HashMap<Key, Vec<usize>>,
    /// Block -> the core that modified it, until another core reads it.
    writer: HashMap<Key, usize>,
    stamp: u64,
}

impl Caches {
    /// The caches of `machine`'s first `cores` CPUs. `line_cost[k]` is the cost of a line served
    /// by level `k` (index 0 unused), `memory_line` by memory, `remote_line` (if any) from another
    /// core's private cache that holds it modified.
    pub fn new(
        machine: &Machine,
        cores: usize,
        line_cost: Vec<f64>,
        memory_line: f64,
        remote_line: Option<f64>,
    ) -> Caches {
        let mut instances: Vec<Instance> = Vec::new();
        let mut ids: BTreeMap<(u8, Vec<usize>), usize> = BTreeMap::new();
        let path = (0..cores)
            .map(|c| {
                machine.cpus[c % machine.cpus.len()]
                    .caches
                    .iter()
                    .map(|k| {
                        *ids.entry((k.level, k.cpus.clone())).or_insert_with(|| {
                            instances.push(Instance {
                                level: k.level,
                                capacity: k.bytes,
                                used: 0,
                                lru: BTreeMap::new(),
                                resident: HashMap::new(),
                            });
                            instances.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        Caches {
            instances,
            path,
            line_cost,
            memory_line,
            remote_line,
            holders: HashMap::new(),
            writer: HashMap::new(),
            stamp: 0,
        }
    }

    /// Cache instances (distinct caches) modelled.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    fn cost_of(&self, level: Option<u8>) -> f64 {
        match level {
            Some(l) => self
                .line_cost
                .get(l as usize)
                .copied()
                .unwrap_or(self.memory_line),
            None => self.memory_line,
        }
    }

    fn touch(&mut self, i: usize, key: Key, bytes: u64) {
        self.stamp += 1;
        let stamp = self.stamp;
        let inst = &mut self.instances[i];
        match inst.resident.get_mut(&key) {
            Some(e) => {
                inst.lru.remove(&e.0);
                inst.used = inst.used - e.1 + bytes.max(e.1);
                *e = (stamp, bytes.max(e.1));
            }
            None => {
                inst.resident.insert(key, (stamp, bytes));
                inst.used += bytes;
                self.holders.entry(key).or_default().push(i);
            }
        }
        inst.lru.insert(stamp, key);
        while inst.used > inst.capacity {
            let Some((_, old)) = inst.lru.pop_first() else {
                break;
            };
            let (_, b) = inst.resident.remove(&old).expect("lru and resident agree");
            inst.used -= b;
            Self::unhold(&mut self.holders, &mut self.writer, old, i);
        }
    }

    /// Instance `i` no longer holds `key`; a block no cache holds is nobody's modified block.
    fn unhold(
        holders: &mut HashMap<Key, Vec<usize>>,
        writer: &mut HashMap<Key, usize>,
        key: Key,
        i: usize,
    ) {
        if let Some(h) = holders.get_mut(&key) {
            h.retain(|&x| x != i);
            if h.is_empty() {
                holders.remove(&key);
                writer.remove(&key);
            }
        }
    }

    fn drop_from(&mut self, i: usize, key: Key) {
        let inst = &mut self.instances[i];
        if let Some((stamp, b)) = inst.resident.remove(&key) {
            inst.lru.remove(&stamp);
            inst.used -= b;
        }
    }

    /// Whether core `w`'s caches hold `key` in an instance `path` (another core's) does not use.
    fn held_privately_by(&self, w: usize, key: Key, path: &[usize]) -> bool {
        self.holders.get(&key).is_some_and(|h| {
            h.iter()
                .any(|i| !path.contains(i) && self.path[w].contains(i))
        })
    }

    /// Core `core` uses `bytes` bytes of array `array` from `offset`; what the misses cost.
    pub fn access(&mut self, core: usize, array: u64, offset: u64, bytes: u64, how: Use) -> Served {
        let mut out = Served::default();
        if bytes == 0 {
            return out;
        }
        let path = std::mem::take(&mut self.path[core]);
        let end = offset + bytes;
        let mut b = offset / BLOCK;
        while b * BLOCK < end {
            let lo = (b * BLOCK).max(offset);
            let hi = ((b + 1) * BLOCK).min(end);
            let key = (array, b);
            let part = hi - lo;
            let lines = part.div_ceil(LINE);
            if how != Use::Fresh {
                let found = path
                    .iter()
                    .map(|&i| &self.instances[i])
                    .find(|inst| inst.resident.contains_key(&key))
                    .map(|inst| inst.level);
                let remote = match (self.writer.get(&key), self.remote_line) {
                    (Some(&w), Some(cost)) if w != core && found.is_some_and(|l| l > 1) => {
                        self.held_privately_by(w, key, &path).then_some(cost)
                    }
                    _ => None,
                };
                if found != Some(1) {
                    out.l1_misses += lines;
                    if remote.is_some() || found.map_or(true, |l| l > 2) {
                        out.l2_misses += lines;
                    }
                    out.cycles += lines as f64 * remote.unwrap_or_else(|| self.cost_of(found));
                }
                if self.writer.get(&key).is_some_and(|&w| w != core) {
                    // Read by another core: written back, shared, clean.
                    self.writer.remove(&key);
                }
            }
            if how != Use::Read {
                self.writer.insert(key, core);
                let others: Vec<usize> = self
                    .holders
                    .get(&key)
                    .map(|h| h.iter().copied().filter(|i| !path.contains(i)).collect())
                    .unwrap_or_default();
                for i in others {
                    self.drop_from(i, key);
                    Self::unhold(&mut self.holders, &mut self.writer, key, i);
                }
            }
            for &i in &path {
                self.touch(i, key, part);
            }
            b += 1;
        }
        self.path[core] = path;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e5410(cores: usize) -> Caches {
        let m = Machine::builtin("e5410").unwrap();
        // Line costs: L2 15, memory 110 (Table II).
        Caches::new(&m, cores, vec![0.0, 0.0, 15.0], 110.0, None)
    }

    /// This project's VM: private L1 and L2 per core, one shared L3. Line costs L2 1, L3 2,
    /// memory 7; 30 from the other core's private cache where it is modified.
    fn this_vm() -> Caches {
        let xml = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../runtime/topologies/this-vm-2cpu.xml"
        );
        let m = Machine::load_hwloc_xml(std::path::Path::new(xml)).unwrap();
        Caches::new(&m, 2, vec![0.0, 0.0, 1.0, 2.0], 7.0, Some(30.0))
    }

    /// A block core 0 wrote costs core 1 the remote price while core 0's L2 holds it modified;
    /// the read leaves it clean, so core 0 reading it back pays only its shared-level price; a
    /// block core 0 wrote and its L2 evicted comes from the L3.
    #[test]
    fn lines_modified_in_another_cores_cache_cost_the_remote_price() {
        let mut c = this_vm();
        assert_eq!(c.access(0, 1, 0, BLOCK, Use::Fresh), Served::default());
        let stolen = c.access(1, 1, 0, BLOCK, Use::Read);
        assert_eq!((stolen.l1_misses, stolen.l2_misses), (64, 64));
        assert_eq!(stolen.cycles, 64.0 * 30.0);
        assert_eq!(c.access(1, 1, 0, BLOCK, Use::Read), Served::default());
        // Core 0 still holds it (clean now): no miss.
        assert_eq!(c.access(0, 1, 0, BLOCK, Use::Read), Served::default());
        // Core 1 writes it: core 0 loses it and reads it from core 1's cache.
        c.access(1, 1, 0, BLOCK, Use::Write);
        assert_eq!(c.access(0, 1, 0, BLOCK, Use::Read).cycles, 64.0 * 30.0);
        // Written by core 0, then pushed out of core 0's L1 and L2 (2 MB) by other data:
        // core 1 finds it clean in the L3.
        c.access(0, 2, 0, BLOCK, Use::Write);
        for a in 0..(3 << 20) / BLOCK {
            c.access(0, 100 + a, 0, BLOCK, Use::Fresh);
        }
        let s = c.access(1, 2, 0, BLOCK, Use::Read);
        assert_eq!(s.cycles, 64.0 * 2.0, "{s:?}");
        assert!(c.writer.len() <= c.holders.len());
    }

    #[test]
    fn one_instance_per_shared_cache() {
        // 8 L1s, 4 L2s.
        assert_eq!(e5410(8).instances(), 12);
        assert_eq!(e5410(2).instances(), 3);
    }

    /// Memory first, then the core's own L1 (free), its L2 partner's L2, and a distant core's
    /// memory latency after a write invalidated the copy.
    #[test]
    fn blocks_are_served_where_they_last_were() {
        let mut c = e5410(8);
        let first = c.access(0, 1, 0, BLOCK, Use::Read);
        assert_eq!((first.l1_misses, first.l2_misses), (64, 64));
        assert_eq!(first.cycles, 64.0 * 110.0);
        assert_eq!(c.access(0, 1, 0, BLOCK, Use::Read), Served::default());
        let partner = c.access(1, 1, 0, BLOCK, Use::Read);
        assert_eq!((partner.l1_misses, partner.l2_misses), (64, 0));
        assert_eq!(partner.cycles, 64.0 * 15.0);
        // Core 4 writes it: the pair (0, 1) loses it.
        c.access(4, 1, 0, BLOCK, Use::Write);
        let back = c.access(0, 1, 0, BLOCK, Use::Read);
        assert_eq!(back.l2_misses, 64);
        // A fresh array costs nothing and is then local.
        assert_eq!(c.access(2, 9, 0, 2 * BLOCK, Use::Fresh), Served::default());
        assert_eq!(c.access(2, 9, 0, 2 * BLOCK, Use::Read), Served::default());
    }

    /// Capacity: past 32 KB a core's L1 evicts the oldest blocks; past 6 MB so does the L2.
    #[test]
    fn lru_eviction_by_bytes() {
        let mut c = e5410(2);
        for b in 0..9 {
            c.access(0, 2, b * BLOCK, BLOCK, Use::Read);
        }
        // 9 blocks of 4 KB: block 0 left the 32 KB L1 but is in the L2.
        let s = c.access(0, 2, 0, BLOCK, Use::Read);
        assert_eq!((s.l1_misses, s.l2_misses), (64, 0));
        for a in 0..2_000 {
            c.access(0, 100 + a, 0, BLOCK, Use::Read);
        }
        let s = c.access(0, 2, BLOCK, BLOCK, Use::Read);
        assert_eq!(
            s.l2_misses, 64,
            "evicted from the L2 after 8 MB of other data"
        );
        for inst in &c.instances {
            assert!(inst.used <= inst.capacity);
            assert_eq!(inst.used, inst.resident.values().map(|v| v.1).sum::<u64>());
        }
    }

    /// Partial blocks count their own lines.
    #[test]
    fn partial_ranges() {
        let mut c = e5410(1);
        let s = c.access(0, 3, 100, 200, Use::Read);
        assert_eq!(s.l1_misses, 4);
        // Residency is tracked per block: block 0 is resident, block 1's one line misses.
        let s = c.access(0, 3, BLOCK - 64, 128, Use::Read);
        assert_eq!(s.l1_misses, 1);
    }
}
