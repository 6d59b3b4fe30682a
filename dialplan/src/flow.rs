//! Flows and IVR menus (filled in by the flow work).
