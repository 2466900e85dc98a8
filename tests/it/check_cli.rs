//! `tokdrop check` end to end: valid items print the exact request, exit codes follow SPEC §1.
