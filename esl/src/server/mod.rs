//! The outbound Event Socket server (FreeSWITCH's `socket` application connects to us).
