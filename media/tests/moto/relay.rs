//! A TCP relay that can be cut: a dependency outage on loopback. Up, it copies bytes both
//! ways between each client and the target; cut, it drops the connections it holds and
//! closes every new one at once (a peer that is gone), until it is restored.

use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    pub port: u16,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// A relay on a free loopback port to `127.0.0.1:target`, up.
    pub async fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, _) = watch::channel(true);
        let watch = up.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut state = watch.subscribe();
                if !*state.borrow_and_update() {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(Ok(server)) = tokio::time::timeout(
                        Duration::from_secs(5),
                        TcpStream::connect(("127.0.0.1", target)),
                    )
                    .await
                    else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        // Cut: both sides are dropped mid-request.
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { port, up, accept }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
