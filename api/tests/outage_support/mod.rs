//! A database outage without stopping the shared PostgreSQL: a loopback TCP proxy in front of
//! it that can be cut (every connection through it closed, the listening port closed so that
//! new connections are refused, as when the server is stopped) and restored (the same port
//! listens again). Also a private database per test, dropped afterwards.
//!
//! ```text
//! let db = PgDatabase::create().await?;                 // None without DATABASE_URL
//! let proxy = CutProxy::start(db.server_addr()).await;
//! let store = Store::connect(&db.url_via(proxy.addr())).await?;
//! proxy.cut().await;   ... the database is "down" ...   proxy.restore().await;
//! ```
//!
//! The benchmark `benches/db_outage.rs` includes this file too.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The proxy. Dropping it stops it (its connections close).
pub struct CutProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    /// Set by the listener task each time it has (re)bound or closed the port.
    listening: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let addr = listener.local_addr().expect("proxy address");
        let (up, up_rx) = watch::channel(true);
        let (listening_tx, listening) = watch::channel(true);
        let task = tokio::spawn(run(listener, addr, target, up_rx, listening_tx));
        CutProxy {
            addr,
            up,
            listening,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through the proxy and stops listening: new connections are
    /// refused until [`CutProxy::restore`]. Returns once the port is closed.
    pub async fn cut(&self) {
        let _ = self.up.send(false);
        let mut l = self.listening.clone();
        let _ = l.wait_for(|listening| !*listening).await;
    }

    /// Listens again on the same port. Returns once it does.
    pub async fn restore(&self) {
        let _ = self.up.send(true);
        let mut l = self.listening.clone();
        let _ = l.wait_for(|listening| *listening).await;
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    first: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    mut up: watch::Receiver<bool>,
    listening: watch::Sender<bool>,
) {
    let mut listener = Some(first);
    loop {
        match listener.take() {
            Some(l) => {
                let _ = listening.send(true);
                loop {
                    tokio::select! {
                        accepted = l.accept() => {
                            if let Ok((conn, _)) = accepted {
                                tokio::spawn(forward(conn, target, up.clone()));
                            }
                        }
                        changed = up.changed() => {
                            if changed.is_err() { return; }
                            if !*up.borrow() { break; }
                        }
                    }
                }
                drop(l);
                let _ = listening.send(false);
            }
            None => {
                if up.wait_for(|u| *u).await.is_err() {
                    return;
                }
                // The port was ours a moment ago; rebinding it can race the kernel's cleanup.
                for _ in 0..100 {
                    match TcpListener::bind(addr).await {
                        Ok(l) => {
                            listener = Some(l);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                if listener.is_none() {
                    panic!("cannot listen on {addr} again");
                }
            }
        }
    }
}

/// Copies both ways until either side closes or the proxy is cut (then both sockets close).
async fn forward(mut client: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    if !*up.borrow() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|u| !*u) => {}
    }
}

/// A database of its own on the `DATABASE_URL` server, dropped by [`PgDatabase::drop_now`].
pub struct PgDatabase {
    admin: PgPool,
    pub name: String,
    base: PgConnectOptions,
}

impl PgDatabase {
    /// None when `DATABASE_URL` is not set (the test is then skipped).
    pub async fn create() -> Option<PgDatabase> {
        let url = std::env::var("DATABASE_URL").ok()?;
        let admin = PgPool::connect(&url).await.expect("DATABASE_URL reachable");
        // Hex digits only: safe to splice into DDL.
        let name = format!("outage_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create the test database");
        let base = PgConnectOptions::from_str(&url).expect("DATABASE_URL parses");
        Some(PgDatabase { admin, name, base })
    }

    /// The server's address (what the proxy forwards to).
    pub fn server_addr(&self) -> SocketAddr {
        let host = match self.base.get_host() {
            "localhost" => "127.0.0.1",
            h => h,
        };
        format!("{host}:{}", self.base.get_port())
            .parse()
            .expect("DATABASE_URL names a numeric host")
    }

    /// A URL of this database reached through `via` (a proxy's address).
    pub fn url_via(&self, via: SocketAddr) -> String {
        format!(
            "postgres://{}@{}/{}",
            self.base.get_username(),
            via,
            self.name
        )
    }

    /// A URL of this database on the server itself.
    pub fn url(&self) -> String {
        self.url_via(self.server_addr())
    }

    pub async fn drop_now(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await;
        self.admin.close().await;
    }
}
