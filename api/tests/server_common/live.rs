//! A `/v1/live` subscription, read as the portals read it.

use serde_json::Value;

use super::Server;

/// One server-sent event.
#[derive(Debug, Default, Clone)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// A `/v1/live` subscription read event by event.
pub struct LiveStream {
    resp: reqwest::Response,
    buf: String,
}

impl LiveStream {
    pub async fn open(s: &Server, key: &str, last_id: Option<&str>) -> LiveStream {
        let mut req = s.http.get(format!("{}/v1/live", s.base)).bearer_auth(key);
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("live");
        assert_eq!(resp.status().as_u16(), 200);
        LiveStream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped), or None within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = Sse::default();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if ev.event.is_empty() && data.is_empty() {
                    continue; // a comment or retry line
                }
                ev.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some(ev);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?
                .ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
