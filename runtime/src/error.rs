//! Why an event could not be posted, why a color could not be placed.

use crate::color::Color;
use std::io;

/// Why an event could not be posted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The runtime was asked to stop; nothing more runs.
    #[error("the runtime is shut down")]
    Shutdown,
    /// The reactor (needed by I/O and timers) could not be created.
    #[error("the reactor could not be created: {0}")]
    Reactor(#[source] io::Error),
}

/// Why a color could not be placed on a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// The runtime has no such core.
    #[error("core {0} does not exist")]
    NoSuchCore(usize),
    /// An event of the color runs right now; try again later.
    #[error("color {0} is running; it cannot move now")]
    Running(Color),
}
