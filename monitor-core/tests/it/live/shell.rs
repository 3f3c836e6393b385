//! Launchers for real servers (filled in by the acceptance work).
