//! Test helpers: environments, servers, raw sessions.

#![allow(dead_code)]

pub mod bins;
pub mod mount;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use colored_runtime::{QueueKind, RuntimeConfig, StealPolicy};
use sfs_client::client::{handshake, Client};
use sfs_proto::frame::{read_frame, LEN_BYTES};
use sfs_proto::key::Key;
use sfs_proto::messages::{ClientMsg, Fh, Reply, Request, ServerMsg};
use sfs_proto::session::{RecvCipher, SendCipher};
use sfs_server::keytable::keygen;
use sfs_server::server::{bind, Coloring, Server, ServerConfig};

/// A temporary export, key table and two users.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub export: PathBuf,
    pub keys: PathBuf,
    pub alice: Key,
    pub bob: Key,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("export");
        std::fs::create_dir(&export).unwrap();
        let keys = dir.path().join("keys");
        let alice = keygen("alice", &keys, &dir.path().join("alice.key")).unwrap();
        let bob = keygen("bob", &keys, &dir.path().join("bob.key")).unwrap();
        Env {
            dir,
            export,
            keys,
            alice,
            bob,
        }
    }

    pub fn key_file(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("{user}.key"))
    }

    /// The uid `user` is mapped to.
    pub fn keys_uid(&self, user: &str) -> u32 {
        let t = sfs_server::keytable::KeyTable::load(&self.keys).unwrap();
        t.get(user).unwrap().uid
    }

    /// Map `user` to (`uid`, `gid`) in the key table (before starting a server).
    pub fn map_user(&self, user: &str, uid: u32, gid: u32) {
        let mut t = sfs_server::keytable::KeyTable::load(&self.keys).unwrap();
        let mut e = t.get(user).unwrap().clone();
        (e.uid, e.gid) = (uid, gid);
        t.insert(user, e).unwrap();
        t.save(&self.keys).unwrap();
    }

    /// Servers started by this test run as root (and so give files to their users).
    pub fn server_is_root(&self) -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// An in-process server.
    pub fn server(
        &self,
        coloring: Coloring,
        queue: QueueKind,
        stealing: StealPolicy,
        lease: Duration,
    ) -> Server {
        self.server_with(coloring, queue, stealing, lease, Duration::from_secs(10))
    }

    pub fn server_with(
        &self,
        coloring: Coloring,
        queue: QueueKind,
        stealing: StealPolicy,
        lease: Duration,
        handshake_timeout: Duration,
    ) -> Server {
        let cfg = ServerConfig {
            handshake_timeout,
            export: self.export.clone(),
            keys: self.keys.clone(),
            runtime: RuntimeConfig {
                workers: 2,
                queue,
                stealing,
                pin: false,
                ..RuntimeConfig::default()
            },
            coloring,
            lease,
            max_unauthenticated: sfs_server::server::MAX_UNAUTHENTICATED,
        };
        Server::start(cfg, bind("127.0.0.1:0".parse().unwrap(), false).unwrap()).unwrap()
    }

    pub fn default_server(&self) -> Server {
        self.server(
            Coloring::PerClient,
            QueueKind::Mely,
            StealPolicy::All,
            Duration::from_secs(30),
        )
    }

    /// A snapshot of every file under the test directory (export and outside it),
    /// server logs excepted.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(p: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            let mut es: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            es.sort();
            for e in es {
                if e.extension().is_some_and(|x| x == "err") {
                    continue; // server logs
                }
                let m = std::fs::symlink_metadata(&e).unwrap();
                if m.is_dir() {
                    out.push((e.clone(), b"<dir>".to_vec()));
                    walk(&e, out);
                } else if m.file_type().is_symlink() {
                    out.push((
                        e.clone(),
                        std::fs::read_link(&e)
                            .unwrap()
                            .into_os_string()
                            .into_encoded_bytes(),
                    ));
                } else {
                    out.push((e.clone(), std::fs::read(&e).unwrap()));
                }
            }
        }
        let mut v = Vec::new();
        walk(self.dir.path(), &mut v);
        v
    }
}

/// The `sfs-server` binary, killed on drop; stderr goes to a file.
pub struct BinServer {
    /// The process started: the server, or the program that runs it (see
    /// [`BinServer::start_under`]).
    pub child: Child,
    /// The server's own pid, from its `listening` line.
    pub server_pid: u32,
    pub addr: SocketAddr,
    pub stderr: PathBuf,
}

impl BinServer {
    pub fn start(env: &Env, extra: &[&str], tag: &str) -> BinServer {
        Self::start_at(env, "127.0.0.1:0", extra, tag)
    }

    pub fn start_at(env: &Env, listen: &str, extra: &[&str], tag: &str) -> BinServer {
        Self::start_cmd(env, &[], listen, extra, tag)
    }

    /// The server run by `wrapper` (a program and its arguments, e.g. `strace -f ...`),
    /// which must run the server as a descendant and pass its stdout through.
    pub fn start_under(env: &Env, wrapper: &[&str], extra: &[&str], tag: &str) -> BinServer {
        Self::start_cmd(env, wrapper, "127.0.0.1:0", extra, tag)
    }

    fn start_cmd(
        env: &Env,
        wrapper: &[&str],
        listen: &str,
        extra: &[&str],
        tag: &str,
    ) -> BinServer {
        let stderr = env.dir.path().join(format!("server-{tag}.err"));
        let bin = crate::util::bins::SERVER;
        let mut cmd = match wrapper {
            [] => Command::new(bin),
            [w, rest @ ..] => {
                let mut c = Command::new(w);
                c.args(rest).arg(bin);
                c
            }
        };
        let mut child = cmd
            .arg("--export")
            .arg(&env.export)
            .args(["--listen", listen])
            .arg("--keys")
            .arg(&env.keys)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split_whitespace()
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("server did not start: {line:?}"));
        // "... (pid N, ..." or "... (ncopy: K processes, pid N)".
        let words: Vec<&str> = line.split_whitespace().collect();
        let server_pid = words
            .windows(2)
            .find(|w| w[0] == "pid" || w[0] == "(pid")
            .and_then(|w| w[1].trim_end_matches([',', ')']).parse().ok())
            .unwrap_or_else(|| child.id());
        BinServer {
            child,
            server_pid,
            addr,
            stderr,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Wait (bounded) until the log contains `what`.
    pub fn wait_log(&self, what: &str) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if self.log().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.server_pid
    }

    /// SIGTERM, then wait (bounded) for a clean exit: the statistics file is written.
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "server exited with {st}");
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "server ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn sigkill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// Sends `sig` to the server while it is certainly ours: `child` has not exited, and
    /// under a wrapper the server is still the wrapper's child (so its pid is not recycled).
    fn signal(&mut self, sig: i32) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if self.server_pid != self.child.id() {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.server_pid));
            // Fields after the ")" of the command: state, then the parent's pid.
            let ppid = stat.ok().and_then(|st| {
                let rest = st
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .to_string();
                rest.parse::<u32>().ok()
            });
            if ppid != Some(self.child.id()) {
                return;
            }
        }
        // SAFETY: kill(2) has no memory preconditions; the pid is our server's (checked above).
        unsafe { libc::kill(self.server_pid as i32, sig) };
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        // SIGTERM lets an N-copy parent stop its children.
        self.signal(libc::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn connect(addr: SocketAddr, user: &str, key: &Key) -> Client {
    Client::connect(addr, user, key).unwrap()
}

/// A hand-driven session for protocol attacks.
pub struct Raw {
    pub s: TcpStream,
    pub send: SendCipher,
    pub recv: RecvCipher,
    pub xid: u32,
}

impl Raw {
    pub fn connect(addr: SocketAddr, user: &str, key: &Key) -> Raw {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let est = handshake(&mut s, user, key).unwrap();
        Raw {
            s,
            send: est.send,
            recv: est.recv,
            xid: 0,
        }
    }

    /// Seal a call into a wire frame without sending it.
    pub fn seal(&mut self, req: Request) -> Vec<u8> {
        self.xid += 1;
        let mut f = vec![0u8; LEN_BYTES];
        ClientMsg::Call { xid: self.xid, req }.encode_into(&mut f);
        self.send.seal_in_place(&mut f).unwrap();
        f
    }

    pub fn write(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    pub fn recv(&mut self) -> std::io::Result<ServerMsg> {
        let (lb, mut body) = read_frame(&mut self.s)?;
        self.recv
            .open_in_place(&lb, &mut body)
            .map_err(std::io::Error::other)?;
        ServerMsg::decode(&body).map_err(std::io::Error::other)
    }

    pub fn call(&mut self, req: Request) -> Result<Reply, sfs_proto::messages::Status> {
        let f = self.seal(req);
        self.write(&f);
        match self.recv().unwrap() {
            ServerMsg::Reply { result, .. } => result,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn lookup(&mut self, path: &str) -> Fh {
        let Ok(Reply::Handle { fh: mut cur, .. }) = self.call(Request::Root) else {
            panic!()
        };
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let Ok(Reply::Handle { fh, .. }) = self.call(Request::Lookup {
                dir: cur,
                name: c.into(),
            }) else {
                panic!("lookup {c}")
            };
            cur = fh;
        }
        cur
    }

    /// True when the server closes the connection (EOF or reset) within 10 s without
    /// sending anything else (see [`closed_within`] for a tighter bound).
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 64];
        match self.s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut r = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut v = vec![0u8; n];
    r.fill_bytes(&mut v);
    v
}

/// True when the server closes `s` (EOF or reset) within `limit` without sending anything.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
    }
}

/// Raises this process's open-file limit so that it can hold `n` descriptors (the soft limit
/// up to the hard one; as root, the hard limit too). False when it cannot.
pub fn nofile_at_least(n: u64) -> bool {
    if edge::limits::raise_nofile().is_ok_and(|soft| soft >= n) {
        return true;
    }
    let r = libc::rlimit {
        rlim_cur: n as libc::rlim_t,
        rlim_max: n as libc::rlim_t,
    };
    // SAFETY: setrlimit only reads `r`, initialised above; raising the hard limit needs
    // CAP_SYS_RESOURCE and fails harmlessly without it.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) == 0 }
}
