//! CPU topology: which CPU each worker is pinned to and, for locality-aware stealing, every
//! worker's other workers ordered by cache distance (shared L2, then shared L3, then the same
//! package, then the same NUMA node, then the rest; ties by core number).
//!
//! The cache map is read with hwloc (feature `hwloc`) and falls back to Linux's `/sys`
//! (`cpu*/cache/index*/shared_cpu_list`, `topology/physical_package_id`, `node*/cpulist`) when
//! hwloc is not compiled in or cannot load the topology.

use std::fs;

/// Distance classes between two CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Distance {
    /// The same CPU.
    SameCpu = 0,
    /// CPUs sharing an L2 cache.
    SharedL2 = 1,
    /// CPUs sharing an L3 cache.
    SharedL3 = 2,
    /// CPUs of one package, no cache in common.
    SamePackage = 3,
    /// CPUs of one NUMA node.
    SameNode = 4,
    /// Anything farther.
    Remote = 5,
}

#[derive(Clone, Debug, Default)]
struct CpuInfo {
    l2: Vec<usize>,
    l3: Vec<usize>,
    package: Option<usize>,
    node: Option<usize>,
}

pub(crate) struct Topology {
    /// CPU of each worker.
    cpu_of: Vec<usize>,
    /// Other workers by increasing distance.
    neighbours: Vec<Vec<usize>>,
    /// Where the cache map came from ("hwloc" or "sysfs").
    source: &'static str,
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is a valid empty set, and sched_getaffinity
    // writes at most `size_of::<cpu_set_t>()` bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let v: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect();
            if !v.is_empty() {
                return v;
            }
        }
    }
    (0..std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1))
        .collect()
}

fn parse_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Data-cache sizes of one CPU, in bytes (`None` where the machine does not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheSizes {
    /// The L2 (unified or data) cache the CPU uses.
    pub l2_bytes: Option<u64>,
    /// The L3 cache the CPU uses.
    pub l3_bytes: Option<u64>,
}

/// Parses a sysfs cache size such as `2048K` or `32M` into bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// The L2 and L3 sizes of `cpu`, from Linux's `/sys/devices/system/cpu/cpu*/cache`.
pub fn cache_sizes(cpu: usize) -> CacheSizes {
    let mut sizes = CacheSizes::default();
    for idx in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/cache/index{idx}");
        let Ok(level) = fs::read_to_string(format!("{dir}/level")) else {
            break;
        };
        let ty = fs::read_to_string(format!("{dir}/type")).unwrap_or_default();
        if ty.trim() == "Instruction" {
            continue;
        }
        let size = fs::read_to_string(format!("{dir}/size"))
            .ok()
            .and_then(|s| parse_size(&s));
        match level.trim() {
            "2" => sizes.l2_bytes = size,
            "3" => sizes.l3_bytes = size,
            _ => {}
        }
    }
    sizes
}

fn sys_cpu_info(cpu: usize) -> CpuInfo {
    let base = format!("/sys/devices/system/cpu/cpu{cpu}");
    let mut info = CpuInfo::default();
    for idx in 0..8 {
        let dir = format!("{base}/cache/index{idx}");
        let Ok(level) = fs::read_to_string(format!("{dir}/level")) else {
            break;
        };
        let ty = fs::read_to_string(format!("{dir}/type")).unwrap_or_default();
        if ty.trim() == "Instruction" {
            continue;
        }
        let shared = fs::read_to_string(format!("{dir}/shared_cpu_list"))
            .map(|s| parse_list(&s))
            .unwrap_or_default();
        match level.trim() {
            "2" => info.l2 = shared,
            "3" => info.l3 = shared,
            _ => {}
        }
    }
    info.package = fs::read_to_string(format!("{base}/topology/physical_package_id"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let Ok(dir) = fs::read_dir("/sys/devices/system/node") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name
                .strip_prefix("node")
                .and_then(|n| n.parse::<usize>().ok())
            {
                if let Ok(list) = fs::read_to_string(e.path().join("cpulist")) {
                    if parse_list(&list).contains(&cpu) {
                        info.node = Some(n);
                    }
                }
            }
        }
    }
    info
}

/// The cache map from hwloc: for each CPU, the CPUs sharing its L2 and L3, its package and its
/// NUMA node. `None` when hwloc cannot load the topology or finds no caches or packages.
/// Not under loom: every model iteration builds a runtime, and hwloc's topology load (~12 ms)
/// would dominate the model's run time; /sys is read instead.
#[cfg(all(feature = "hwloc", not(loom)))]
fn hwloc_cpu_infos(cpus: &[usize]) -> Option<Vec<CpuInfo>> {
    use hwloc2::{ObjectType, Topology as Hw};
    let topo = Hw::new()?;
    let sets = |t: ObjectType| -> Vec<Vec<usize>> {
        // Only ordinary depths: hwloc2 panics on the virtual (negative) depths of memory and I/O
        // objects, so NUMA nodes come from /sys instead.
        let Ok(depth) = topo.depth_for_type(&t) else {
            return Vec::new();
        };
        if depth >= topo.depth() {
            return Vec::new();
        }
        Some(topo.objects_at_depth(depth))
            .map(|objs| {
                objs.iter()
                    .filter_map(|o| o.cpuset())
                    .map(|cs| {
                        let last = cs.last().max(0) as u32;
                        (0..=last)
                            .filter(|&i| cs.is_set(i))
                            .map(|i| i as usize)
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (l2, l3, pkg) = (
        sets(ObjectType::L2Cache),
        sets(ObjectType::L3Cache),
        sets(ObjectType::Package),
    );
    if l2.is_empty() && l3.is_empty() && pkg.is_empty() {
        return None;
    }
    let find = |v: &Vec<Vec<usize>>, c: usize| v.iter().position(|s| s.contains(&c));
    Some(
        cpus.iter()
            .map(|&c| CpuInfo {
                l2: find(&l2, c).map(|i| l2[i].clone()).unwrap_or_default(),
                l3: find(&l3, c).map(|i| l3[i].clone()).unwrap_or_default(),
                package: find(&pkg, c),
                node: sys_cpu_info(c).node,
            })
            .collect(),
    )
}
#[cfg(any(not(feature = "hwloc"), loom))]
fn hwloc_cpu_infos(_cpus: &[usize]) -> Option<Vec<CpuInfo>> {
    None
}

fn distance(a: usize, ia: &CpuInfo, b: usize, ib: &CpuInfo) -> Distance {
    if a == b {
        Distance::SameCpu
    } else if ia.l2.contains(&b) {
        Distance::SharedL2
    } else if ia.l3.contains(&b) {
        Distance::SharedL3
    } else if ia.package.is_some() && ia.package == ib.package {
        Distance::SamePackage
    } else if ia.node.is_some() && ia.node == ib.node {
        Distance::SameNode
    } else {
        Distance::Remote
    }
}

impl Topology {
    pub(crate) fn detect(workers: usize) -> Topology {
        let allowed = allowed_cpus();
        let cpu_of: Vec<usize> = (0..workers).map(|w| allowed[w % allowed.len()]).collect();
        // hwloc is a C library behind a young binding: never let it take the runtime down.
        let from_hwloc = std::panic::catch_unwind(|| hwloc_cpu_infos(&cpu_of))
            .ok()
            .flatten();
        let (infos, source) = match from_hwloc {
            Some(i) => (i, "hwloc"),
            None => (cpu_of.iter().map(|&c| sys_cpu_info(c)).collect(), "sysfs"),
        };
        let neighbours = (0..workers)
            .map(|w| {
                let mut others: Vec<usize> = (0..workers).filter(|&o| o != w).collect();
                others.sort_by_key(|&o| {
                    (
                        distance(cpu_of[w], &infos[w], cpu_of[o], &infos[o]),
                        (o + workers - w) % workers,
                    )
                });
                others
            })
            .collect();
        Topology {
            cpu_of,
            neighbours,
            source,
        }
    }

    pub(crate) fn source(&self) -> &'static str {
        self.source
    }

    pub(crate) fn neighbours(&self, w: usize) -> &[usize] {
        &self.neighbours[w]
    }

    /// The CPU worker `w` is pinned to (when pinning is on).
    pub(crate) fn cpu_of(&self, w: usize) -> usize {
        self.cpu_of[w]
    }
}

/// Pin the calling thread to `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the affinity mask's size"),
        ));
    }
    // SAFETY: the set is a zeroed plain-data `cpu_set_t` with one CPU index set, checked above
    // to be below CPU_SETSIZE; pid 0 is the calling thread; the kernel only reads the set.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cache_sizes() {
        assert_eq!(parse_size("2048K\n"), Some(2 << 20));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("K"), None);
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_list(""), Vec::<usize>::new());
    }

    #[test]
    fn orders_by_cache_distance() {
        let infos = [
            CpuInfo {
                l2: vec![0, 1],
                l3: vec![0, 1, 2, 3],
                package: Some(0),
                node: Some(0),
            },
            CpuInfo {
                l2: vec![0, 1],
                l3: vec![0, 1, 2, 3],
                package: Some(0),
                node: Some(0),
            },
            CpuInfo {
                l2: vec![2, 3],
                l3: vec![0, 1, 2, 3],
                package: Some(0),
                node: Some(0),
            },
            CpuInfo {
                l2: vec![2, 3],
                l3: vec![0, 1, 2, 3],
                package: Some(0),
                node: Some(0),
            },
            CpuInfo {
                l2: vec![4],
                l3: vec![4],
                package: Some(1),
                node: Some(1),
            },
        ];
        assert_eq!(distance(0, &infos[0], 1, &infos[1]), Distance::SharedL2);
        assert_eq!(distance(0, &infos[0], 2, &infos[2]), Distance::SharedL3);
        assert_eq!(distance(0, &infos[0], 4, &infos[4]), Distance::Remote);
    }
}
