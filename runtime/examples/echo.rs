//! An echo server on the colored runtime. Every connection is a color: connections are served
//! in parallel on all cores, and one connection's events never overlap, so its state needs no
//! lock (it lives in a `ColorCell`).
//!
//! ```text
//! cargo run --release -p colored-runtime --example echo -- [ADDR] [WORKERS]
//! ```
//! Defaults: `127.0.0.1:7007`, one worker per core. Prints `listening on ADDR` once ready, then
//! serves until its standard input closes.

use colored_runtime::RuntimeConfig;
use colored_runtime::{Color, ColorCell, Ctx, HandlerId, HandlerSpec, IoToken, Runtime};
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::Interest;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The color of the listener's events (the reactor's own is 0 too: accepting is serial).
const LISTENER: Color = Color(0);

/// One connection: its socket, its registration, and bytes read but not yet written back.
struct Conn {
    stream: TcpStream,
    token: IoToken,
    pending: Vec<u8>,
}

/// Read what is there and write it back. False once the connection is finished (closed by the
/// peer, or failed).
fn serve(conn: &mut Conn) -> bool {
    let mut buf = [0u8; 4096];
    let mut open = true;
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    while !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(n) => {
                conn.pending.drain(..n);
            }
            // The rest goes out on the next writable readiness.
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    open
}

/// In the connection's own color: register the socket, keep it in a cell of that color, serve
/// what already arrived. Readiness events of the color can only run after this one.
fn open(ctx: &mut Ctx<'_>, stream: TcpStream, on_data: HandlerId) {
    let color = ctx.color();
    let cell: Arc<ColorCell<Option<Conn>>> = Arc::new(ColorCell::new(color, None));
    let fd = stream.as_raw_fd();
    let cb = cell.clone();
    let registered = ctx.handle().register_io(
        &mut SourceFd(&fd),
        Interest::READABLE | Interest::WRITABLE,
        color,
        on_data,
        move |ctx, _ready| cb.with_ctx(ctx, |slot, ctx| serve_or_close(slot, ctx)),
    );
    // Not registered (out of resources): dropping the stream closes the connection.
    if let Ok(token) = registered {
        cell.with_ctx(ctx, |slot, ctx| {
            *slot = Some(Conn {
                stream,
                token,
                pending: Vec::new(),
            });
            serve_or_close(slot, ctx);
        });
    }
}

/// Serve the connection in `slot`; once it is finished, deregister and drop it (closing it).
fn serve_or_close(slot: &mut Option<Conn>, ctx: &mut Ctx<'_>) {
    let finished = slot.as_mut().is_some_and(|c| !serve(c));
    if finished {
        if let Some(c) = slot.take() {
            let fd = c.stream.as_raw_fd();
            let _ = ctx.handle().deregister_io(&mut SourceFd(&fd), c.token);
        }
    }
}

/// Accept every pending connection and hand each to a color of its own.
fn accept(ctx: &mut Ctx<'_>, listener: &TcpListener, next: &AtomicU32, on_data: HandlerId) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // WouldBlock: all accepted. Anything else (out of descriptors): the next
            // readiness retries.
            Err(_) => return,
        };
        // Colors 1..=65535 (0 is the listener's), distinct modulo the color map's 65 536 slots.
        let color = Color(1 + next.fetch_add(1, Ordering::Relaxed) % 65_535);
        ctx.post(color, on_data, move |ctx| open(ctx, stream, on_data));
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7007".into());
    let workers = match args.next() {
        Some(w) => w
            .parse()
            .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "WORKERS must be a number"))?,
        None => RuntimeConfig::default().workers,
    };
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("ADDR {addr}: {e}")))?;
    let rt = Runtime::new(RuntimeConfig {
        workers,
        ..Default::default()
    })
    .map_err(io::Error::other)?;
    let on_accept = rt.register(HandlerSpec::new("Accept"));
    let on_data = rt.register(HandlerSpec::new("Echo"));
    let listener = Arc::new(TcpListener::bind(addr)?);
    let fd = listener.as_raw_fd();
    let next = AtomicU32::new(0);
    let l = listener.clone();
    rt.handle().register_io(
        &mut SourceFd(&fd),
        Interest::READABLE,
        LISTENER,
        on_accept,
        move |ctx, _| accept(ctx, &l, &next, on_data),
    )?;
    println!("listening on {}", listener.local_addr()?);
    // Serve until standard input closes.
    io::copy(&mut io::stdin(), &mut io::sink())?;
    rt.shutdown();
    Ok(())
}
