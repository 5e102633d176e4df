//! Colored event runtime.
