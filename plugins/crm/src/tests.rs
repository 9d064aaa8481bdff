//! Reads against a tiny in-process HTTP server that answers canned pages.
