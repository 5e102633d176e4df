//! CPU topology: which CPU each worker is pinned to and, for locality-aware stealing, every
//! worker's other workers ordered by cache distance (shared L2, then shared L3, then the same
//! package, then the same NUMA node, then the rest; ties by core number).
//!
//! The cache map is read with hwloc (feature `hwloc`) and falls back to Linux's `/sys`
//! (`cpu*/cache/index*/shared_cpu_list`, `topology/physical_package_id`, `node*/cpulist`) when
//! hwloc is not compiled in or cannot load the topology.
//!
//! A [`Machine`] is a cache map as data: every CPU's caches (level, size, which CPUs share it),
//! package and NUMA node, read from an hwloc XML file (`lstopo --of xml`), from `/sys`, or one
//! of the files shipped in `runtime/topologies/` ([`Machine::builtin`]: `e5410`, the Mely paper's
//! machine, and `numa2`, a two-node NUMA machine). The simulator runs the runtime on a machine
//! that is not this one; the victim order of locality-aware stealing comes from the same
//! distance classes either way.

use std::fs;
use std::path::Path;

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

/// One data (or unified) cache, as one CPU sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cache {
    /// 1 for L1, 2 for L2, ...
    pub level: u8,
    /// Capacity in bytes.
    pub bytes: u64,
    /// The CPUs sharing it (indices into [`Machine::cpus`], ascending, the CPU itself included).
    pub cpus: Vec<usize>,
}

/// One CPU of a [`Machine`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MachineCpu {
    /// The operating system's number for it (hwloc's PU `os_index`, Linux's `cpuN`).
    pub os_index: usize,
    /// Its data and unified caches by increasing level, at most one per level.
    pub caches: Vec<Cache>,
    /// Its package (socket), when known.
    pub package: Option<usize>,
    /// Its NUMA node, when known.
    pub node: Option<usize>,
}

/// A machine's cache map as data (see the module doc). Invariant: `cpus` is not empty, and every
/// CPU index in a [`Cache::cpus`] list is below `cpus.len()`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Machine {
    /// Where it came from: a built-in name, a file name, or `sysfs`.
    pub name: String,
    /// CPUs by increasing OS index; a simulation's worker `w` runs on `cpus[w]`.
    pub cpus: Vec<MachineCpu>,
    /// The `<info name=.. value=..>` pairs of the XML's Machine object, in file order (the shipped
    /// files record the CPU frequency and the memory hierarchy's latencies there).
    pub info: Vec<(String, String)>,
}

/// Why a machine description could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What reading it gave.
        source: std::io::Error,
    },
    /// The file (first field) is not XML (second: the parser's message).
    #[error("{0}: not well-formed XML: {1}")]
    Xml(String, String),
    /// The file (first field) is XML but not an hwloc topology (second: what is wrong).
    #[error("{0}: not an hwloc topology: {1}")]
    Invalid(String, String),
    /// No built-in machine has this name.
    #[error("unknown machine {0:?} (built in: e5410, numa2; or an hwloc XML file)")]
    Unknown(String),
}

/// The hwloc XML files shipped with the runtime.
const BUILTIN: [(&str, &str); 2] = [
    ("e5410", include_str!("../topologies/e5410.xml")),
    ("numa2", include_str!("../topologies/numa2.xml")),
];

/// Parses an hwloc bitmap (`0x00000003`, or 32-bit words, most significant first:
/// `0x00000001,0xffffffff`) into its set bits. `None` when it is not one.
fn parse_bitmap(s: &str) -> Option<Vec<usize>> {
    let words: Vec<&str> = s.trim().split(',').collect();
    let mut bits = Vec::new();
    for (k, w) in words.iter().rev().enumerate() {
        let w = w.trim();
        let hex = w.strip_prefix("0x").unwrap_or(w);
        if hex.is_empty() || hex.len() > 8 {
            return None;
        }
        let v = u32::from_str_radix(hex, 16).ok()?;
        bits.extend((0..32).filter(|b| v >> b & 1 == 1).map(|b| 32 * k + b));
    }
    bits.sort_unstable();
    Some(bits)
}

/// The cache level of an hwloc object type, for data and unified caches: hwloc 2's `L2Cache`
/// (`L1iCache` and the other instruction caches are skipped), hwloc 1's `Cache` with its `depth`
/// (type 2 is an instruction cache).
fn cache_level(node: roxmltree::Node<'_, '_>, ty: &str) -> Option<u8> {
    if ty == "Cache" {
        if node.attribute("cache_type") == Some("2") {
            return None;
        }
        return node.attribute("depth")?.parse().ok();
    }
    let level = ty.strip_prefix('L')?.strip_suffix("Cache")?;
    let level = level.strip_suffix('u').unwrap_or(level);
    level.parse().ok()
}

impl Machine {
    /// Names of the built-in machines.
    pub const BUILTIN: [&'static str; 2] = ["e5410", "numa2"];

    /// A machine shipped in `runtime/topologies/`: `e5410` (the Mely paper's 2 x 4-core Xeon E5410,
    /// L2 shared by pairs, Table II's latencies) or `numa2` (two NUMA nodes of 2 x 4 cores).
    pub fn builtin(name: &str) -> Result<Machine, MachineError> {
        let (_, xml) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| MachineError::Unknown(name.to_string()))?;
        Machine::from_hwloc_xml(name, xml)
    }

    /// Reads an hwloc XML file (as written by `lstopo --of xml`, hwloc 1.x or 2.x).
    pub fn load_hwloc_xml(path: &Path) -> Result<Machine, MachineError> {
        let name = path.display().to_string();
        let xml = fs::read_to_string(path).map_err(|source| MachineError::Io {
            path: name.clone(),
            source,
        })?;
        Machine::from_hwloc_xml(&name, &xml)
    }

    /// Parses hwloc XML; `name` names it in errors and in [`Machine::name`].
    pub fn from_hwloc_xml(name: &str, xml: &str) -> Result<Machine, MachineError> {
        let bad = |why: &str| MachineError::Invalid(name.to_string(), why.to_string());
        // hwloc writes a DOCTYPE line (`hwloc2.dtd`); external entities stay unresolved, and the
        // parser bounds entity expansion itself.
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            nodes_limit: 1 << 20,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, opts)
            .map_err(|e| MachineError::Xml(name.to_string(), e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "topology" {
            return Err(bad("the root element is not <topology>"));
        }
        let cpuset = |n: roxmltree::Node<'_, '_>| -> Result<Vec<usize>, MachineError> {
            let s = n
                .attribute("cpuset")
                .ok_or_else(|| bad("an object has no cpuset"))?;
            parse_bitmap(s).ok_or_else(|| bad(&format!("bad cpuset {s:?}")))
        };
        let mut pus: Vec<usize> = Vec::new();
        // (level, bytes, OS CPUs), in document order.
        let mut caches: Vec<(u8, u64, Vec<usize>)> = Vec::new();
        let mut packages: Vec<Vec<usize>> = Vec::new();
        let mut nodes: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut info = Vec::new();
        for n in root.descendants().filter(|n| n.has_tag_name("object")) {
            let ty = n.attribute("type").unwrap_or("");
            match ty {
                "Machine" => {
                    info = n
                        .children()
                        .filter(|c| c.has_tag_name("info"))
                        .filter_map(|c| {
                            Some((c.attribute("name")?.into(), c.attribute("value")?.into()))
                        })
                        .collect();
                }
                "PU" => {
                    let os = n
                        .attribute("os_index")
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| bad("a PU has no os_index"))?;
                    pus.push(os);
                }
                "Package" | "Socket" => packages.push(cpuset(n)?),
                "NUMANode" => {
                    let os = n.attribute("os_index").and_then(|v| v.parse().ok());
                    nodes.push((os.unwrap_or(nodes.len()), cpuset(n)?));
                }
                _ => {
                    if let Some(level) = cache_level(n, ty) {
                        let bytes = n
                            .attribute("cache_size")
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad(&format!("an {ty} has no cache_size")))?;
                        caches.push((level, bytes, cpuset(n)?));
                    }
                }
            }
        }
        pus.sort_unstable();
        pus.dedup();
        if pus.is_empty() {
            return Err(bad("no PU objects"));
        }
        let index_of = |os: usize| pus.binary_search(&os).ok();
        let cpus = pus
            .iter()
            .map(|&os| {
                let mut mine: Vec<Cache> = Vec::new();
                for (level, bytes, set) in &caches {
                    if set.contains(&os) && !mine.iter().any(|c| c.level == *level) {
                        mine.push(Cache {
                            level: *level,
                            bytes: *bytes,
                            cpus: set.iter().filter_map(|&c| index_of(c)).collect(),
                        });
                    }
                }
                mine.sort_by_key(|c| c.level);
                MachineCpu {
                    os_index: os,
                    caches: mine,
                    package: packages.iter().position(|p| p.contains(&os)),
                    node: nodes
                        .iter()
                        .find(|(_, set)| set.contains(&os))
                        .map(|(id, _)| *id),
                }
            })
            .collect();
        Ok(Machine {
            name: name.to_string(),
            cpus,
            info,
        })
    }

    /// This machine's CPUs this process may use, from `/sys` (caches, packages, NUMA nodes).
    pub fn from_sysfs() -> Machine {
        let os_cpus = allowed_cpus();
        let index_of = |os: usize| os_cpus.iter().position(|&c| c == os);
        let cpus = os_cpus
            .iter()
            .map(|&os| {
                let base = format!("/sys/devices/system/cpu/cpu{os}");
                let mut caches: Vec<Cache> = Vec::new();
                for idx in 0..8 {
                    let dir = format!("{base}/cache/index{idx}");
                    let Ok(level) = fs::read_to_string(format!("{dir}/level")) else {
                        break;
                    };
                    let ty = fs::read_to_string(format!("{dir}/type")).unwrap_or_default();
                    let Ok(level) = level.trim().parse::<u8>() else {
                        continue;
                    };
                    let bytes = fs::read_to_string(format!("{dir}/size"))
                        .ok()
                        .and_then(|s| parse_size(&s));
                    if ty.trim() == "Instruction" || caches.iter().any(|c| c.level == level) {
                        continue;
                    }
                    let Some(bytes) = bytes else { continue };
                    let shared = fs::read_to_string(format!("{dir}/shared_cpu_list"))
                        .map(|s| parse_list(&s))
                        .unwrap_or_else(|_| vec![os]);
                    caches.push(Cache {
                        level,
                        bytes,
                        cpus: shared.into_iter().filter_map(index_of).collect(),
                    });
                }
                caches.sort_by_key(|c| c.level);
                let info = sys_cpu_info(os);
                MachineCpu {
                    os_index: os,
                    caches,
                    package: info.package,
                    node: info.node,
                }
            })
            .collect();
        Machine {
            name: "sysfs".into(),
            cpus,
            info: Vec::new(),
        }
    }

    /// The value of the XML's `<info name="key">`, if any.
    pub fn info(&self, key: &str) -> Option<&str> {
        self.info
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// CPU `cpu`'s cache of `level`, if it has one.
    pub fn cache(&self, cpu: usize, level: u8) -> Option<&Cache> {
        self.cpus.get(cpu)?.caches.iter().find(|c| c.level == level)
    }

    /// The first `n` CPUs of this machine; past its size, whole copies of it side by side (each
    /// copy's packages and NUMA nodes numbered after the previous copy's, caches never shared
    /// between copies): how the simulator grows a machine beyond its CPUs.
    pub fn resized(&self, n: usize) -> Machine {
        let len = self.cpus.len();
        let copies = n.div_ceil(len).max(1);
        let next = |f: &dyn Fn(&MachineCpu) -> Option<usize>| {
            self.cpus.iter().filter_map(f).max().map_or(0, |m| m + 1)
        };
        let (pkgs, nodes) = (next(&|c| c.package), next(&|c| c.node));
        let os_span = next(&|c| Some(c.os_index));
        let mut cpus = Vec::with_capacity(copies * len);
        for k in 0..copies {
            for c in &self.cpus {
                cpus.push(MachineCpu {
                    os_index: c.os_index + k * os_span,
                    caches: c
                        .caches
                        .iter()
                        .map(|cache| Cache {
                            level: cache.level,
                            bytes: cache.bytes,
                            cpus: cache.cpus.iter().map(|&i| i + k * len).collect(),
                        })
                        .collect(),
                    package: c.package.map(|p| p + k * pkgs),
                    node: c.node.map(|d| d + k * nodes),
                });
            }
        }
        cpus.truncate(n.max(1));
        let kept = cpus.len();
        for c in &mut cpus {
            for cache in &mut c.caches {
                cache.cpus.retain(|&i| i < kept);
            }
        }
        Machine {
            name: self.name.clone(),
            cpus,
            info: self.info.clone(),
        }
    }

    /// CPU `cpu` in the form the distance classes read (sharing lists by CPU index).
    fn cpu_info(&self, cpu: usize) -> CpuInfo {
        let shared = |level| {
            self.cache(cpu, level)
                .map(|c| c.cpus.clone())
                .unwrap_or_default()
        };
        let c = &self.cpus[cpu];
        CpuInfo {
            l2: shared(2),
            l3: shared(3),
            package: c.package,
            node: c.node,
        }
    }

    /// How far CPU `b` is from CPU `a` (the classes locality-aware stealing orders victims by).
    pub fn distance(&self, a: usize, b: usize) -> Distance {
        distance(a, &self.cpu_info(a), b, &self.cpu_info(b))
    }

    /// The order in which a locality-aware thief on worker `w` of `workers` (one per CPU, as
    /// `Topology` places them) looks at the others: the runtime's own neighbour sort.
    pub fn neighbours(&self, workers: usize, w: usize) -> Vec<usize> {
        Topology::for_machine(self, workers).neighbours(w).to_vec()
    }
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

/// Every worker's other workers by increasing distance (ties by core number, counting on from
/// the worker's own). `infos[w]` describes `cpu_of[w]`.
fn neighbour_lists(cpu_of: &[usize], infos: &[CpuInfo]) -> Vec<Vec<usize>> {
    let workers = cpu_of.len();
    (0..workers)
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
        .collect()
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
        let neighbours = neighbour_lists(&cpu_of, &infos);
        Topology {
            cpu_of,
            neighbours,
            source,
        }
    }

    /// The topology of `workers` workers on `machine`'s CPUs (worker `w` on CPU `w` modulo their
    /// number), never pinned: for running the runtime's decisions on a machine that is not this
    /// one (the simulator).
    pub(crate) fn for_machine(machine: &Machine, workers: usize) -> Topology {
        let n = machine.cpus.len().max(1);
        let cpu_of: Vec<usize> = (0..workers).map(|w| w % n).collect();
        let infos: Vec<CpuInfo> = cpu_of.iter().map(|&c| machine.cpu_info(c)).collect();
        Topology {
            neighbours: neighbour_lists(&cpu_of, &infos),
            cpu_of,
            source: "machine",
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

    fn machine(name: &str) -> Machine {
        Machine::builtin(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_hwloc_bitmaps() {
        assert_eq!(parse_bitmap("0x00000003"), Some(vec![0, 1]));
        assert_eq!(parse_bitmap("0x00000001,0x80000000"), Some(vec![31, 32]));
        assert_eq!(parse_bitmap("0x0"), Some(vec![]));
        assert_eq!(parse_bitmap("0xzz"), None);
        assert_eq!(parse_bitmap(""), None);
    }

    /// The Mely paper's machine: 2 packages x 4 cores, 6 MB L2 per pair, 32 KB L1 per core, one
    /// NUMA node, Table II's latencies in the file.
    #[test]
    fn loads_the_e5410_file() {
        let m = machine("e5410");
        assert_eq!(m.cpus.len(), 8);
        for (i, c) in m.cpus.iter().enumerate() {
            assert_eq!(c.os_index, i);
            assert_eq!(c.package, Some(i / 4));
            assert_eq!(c.node, Some(0));
            let levels: Vec<u8> = c.caches.iter().map(|c| c.level).collect();
            assert_eq!(levels, vec![1, 2], "cpu {i}: L1 and L2, no L3");
            assert_eq!(m.cache(i, 1).unwrap().bytes, 32 << 10);
            assert_eq!(m.cache(i, 1).unwrap().cpus, vec![i]);
            let l2 = m.cache(i, 2).unwrap();
            assert_eq!(l2.bytes, 6 << 20);
            assert_eq!(l2.cpus, vec![i & !1, i | 1]);
        }
        assert_eq!(m.info("LatencyL1Cycles"), Some("4"));
        assert_eq!(m.info("LatencyL2Cycles"), Some("15"));
        assert_eq!(m.info("LatencyMemoryCycles"), Some("110"));
        assert_eq!(m.info("CPUFrequencyMHz"), Some("2333"));
    }

    #[test]
    fn loads_the_numa_file() {
        let m = machine("numa2");
        assert_eq!(m.cpus.len(), 16);
        for (i, c) in m.cpus.iter().enumerate() {
            assert_eq!((c.package, c.node), (Some(i / 4), Some(i / 8)), "cpu {i}");
            assert_eq!(m.cache(i, 2).unwrap().cpus, vec![i & !1, i | 1]);
            let l3 = m.cache(i, 3).unwrap();
            assert_eq!(l3.bytes, 8 << 20);
            assert_eq!(l3.cpus, (i & !3..(i & !3) + 4).collect::<Vec<_>>());
        }
    }

    /// A file `lstopo --of xml` wrote on a 2-vCPU virtual machine (hwloc 2.9): private L1 and L2,
    /// one L3 for both, the NUMA node under the package.
    #[test]
    fn loads_a_real_lstopo_file() {
        let m =
            Machine::from_hwloc_xml("vm", include_str!("../topologies/this-vm-2cpu.xml")).unwrap();
        assert_eq!(m.cpus.len(), 2);
        for i in 0..2 {
            let levels: Vec<(u8, u64)> = m.cpus[i]
                .caches
                .iter()
                .map(|c| (c.level, c.bytes))
                .collect();
            assert_eq!(levels, vec![(1, 49_152), (2, 2 << 20), (3, 480 << 20)]);
            assert_eq!(m.cache(i, 2).unwrap().cpus, vec![i]);
            assert_eq!(m.cache(i, 3).unwrap().cpus, vec![0, 1]);
            assert_eq!((m.cpus[i].package, m.cpus[i].node), (Some(0), Some(0)));
        }
        assert_eq!(m.distance(0, 1), Distance::SharedL3);
    }

    /// hwloc 1.x wrote caches as `Cache` objects with a depth and packages as `Socket`.
    #[test]
    fn loads_hwloc_1_layout() {
        let xml = r#"<?xml version="1.0"?><topology>
          <object type="Machine" os_index="0" cpuset="0x00000003">
            <object type="NUMANode" os_index="0" cpuset="0x00000003">
              <object type="Socket" os_index="0" cpuset="0x00000003">
                <object type="Cache" cpuset="0x00000003" cache_size="4194304" depth="2" cache_type="0">
                  <object type="Cache" cpuset="0x00000001" cache_size="32768" depth="1" cache_type="1">
                    <object type="Cache" cpuset="0x00000001" cache_size="32768" depth="1" cache_type="2">
                      <object type="Core" cpuset="0x00000001"><object type="PU" os_index="0" cpuset="0x00000001"/></object>
                    </object>
                  </object>
                  <object type="Cache" cpuset="0x00000002" cache_size="32768" depth="1" cache_type="1">
                    <object type="Core" cpuset="0x00000002"><object type="PU" os_index="1" cpuset="0x00000002"/></object>
                  </object>
                </object>
              </object>
            </object>
          </object></topology>"#;
        let m = Machine::from_hwloc_xml("old", xml).unwrap();
        assert_eq!(m.cpus.len(), 2);
        assert_eq!(m.cache(0, 2).unwrap().cpus, vec![0, 1]);
        assert_eq!(m.cache(0, 1).unwrap().bytes, 32768);
        assert_eq!(m.cache(1, 1).unwrap().cpus, vec![1]);
        assert_eq!(m.distance(0, 1), Distance::SharedL2);
    }

    #[test]
    fn rejects_what_is_not_a_topology() {
        assert!(matches!(
            Machine::from_hwloc_xml("x", "<topology"),
            Err(MachineError::Xml(..))
        ));
        assert!(matches!(
            Machine::from_hwloc_xml("x", "<machine/>"),
            Err(MachineError::Invalid(..))
        ));
        assert!(matches!(
            Machine::from_hwloc_xml(
                "x",
                "<topology><object type=\"Machine\" cpuset=\"0x1\"/></topology>"
            ),
            Err(MachineError::Invalid(..))
        ));
        let bad_set = "<topology><object type=\"Package\" cpuset=\"0xq\"/></topology>";
        let e = Machine::from_hwloc_xml("x", bad_set)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad cpuset"), "{e}");
        assert!(matches!(
            Machine::builtin("pentium"),
            Err(MachineError::Unknown(_))
        ));
        let e = Machine::load_hwloc_xml(Path::new("/nonexistent/x.xml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.xml"), "{e}");
    }

    /// The locality neighbour sort on the paper's machine: the L2 partner, then the package, then
    /// the other package (same NUMA node), each class counting on from the thief's number.
    #[test]
    fn neighbour_order_on_the_e5410() {
        let m = machine("e5410");
        assert_eq!(m.neighbours(8, 0), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(m.neighbours(8, 3), vec![2, 0, 1, 4, 5, 6, 7]);
        assert_eq!(m.neighbours(8, 5), vec![4, 6, 7, 0, 1, 2, 3]);
        assert_eq!(m.distance(0, 1), Distance::SharedL2);
        assert_eq!(m.distance(0, 2), Distance::SamePackage);
        assert_eq!(m.distance(0, 4), Distance::SameNode);
        // 4 workers: one package; the order stays the cache order.
        assert_eq!(m.neighbours(4, 2), vec![3, 0, 1]);
    }

    /// The locality neighbour sort on the two-node NUMA machine: every distance class in order.
    #[test]
    fn neighbour_order_on_the_numa_machine() {
        let m = machine("numa2");
        assert_eq!(m.neighbours(16, 0), (1..16).collect::<Vec<_>>());
        assert_eq!(
            m.neighbours(16, 9),
            vec![8, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]
        );
        let classes: Vec<Distance> = (0..16).map(|o| m.distance(6, o)).collect();
        use Distance::*;
        assert_eq!(
            classes,
            [
                vec![SameNode; 4],
                vec![SharedL3, SharedL3, SameCpu, SharedL2],
                vec![Remote; 8]
            ]
            .concat()
        );
    }

    /// Growing a machine repeats it (separate caches, packages and nodes); shrinking keeps the
    /// first CPUs and drops the others from the sharing lists.
    #[test]
    fn resizes_machines() {
        let m = machine("e5410");
        let small = m.resized(3);
        assert_eq!(small.cpus.len(), 3);
        assert_eq!(small.cache(2, 2).unwrap().cpus, vec![2]);
        let big = m.resized(20);
        assert_eq!(big.cpus.len(), 20);
        assert_eq!(big.cache(9, 2).unwrap().cpus, vec![8, 9]);
        assert_eq!(big.cache(17, 2).unwrap().cpus, vec![16, 17]);
        assert_eq!(big.cpus[12].package, Some(3));
        assert_eq!(big.cpus[19].package, Some(4));
        assert_eq!(big.distance(0, 8), Distance::Remote);
        assert_eq!(big.neighbours(20, 8)[..7], [9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(m.resized(8), m);
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
