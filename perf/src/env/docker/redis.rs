//! The Redis container, as the official `redis` image runs it: port 6379, no password; ready
//! when `PING` answers `PONG`.

/// The port Redis listens on inside the network.
pub(super) const PORT: u16 = 6379;

/// Sends `PING` to Redis on 127.0.0.1:`port` and expects `PONG`.
pub async fn answers(port: u16) -> Result<(), String> {
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str()).map_err(|e| format!("{url}: {e}"))?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| format!("connecting to {url}: {e}"))?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| format!("PING {url}: {e}"))?;
    if pong == "PONG" { Ok(()) } else { Err(format!("PING {url} answered {pong:?}")) }
}
