//! Business hours (filled in by the schedule work).
