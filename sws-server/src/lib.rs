//! SWS: the nine-handler static web server on the colored runtime, colored or N-copy
