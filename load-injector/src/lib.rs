//! Closed-loop master/slave HTTP load injector
