//! The inbound Event Socket client (switchyard connects to FreeSWITCH on port 8021).
