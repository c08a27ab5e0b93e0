//! PostgreSQL and Redis as child processes, against the real programs: start, use, stop,
//! start again, and nothing left behind after `shutdown` or `Drop`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use perf::env::local::{PostgresOptions, PostgresProcess, RedisOptions, RedisProcess};
use perf::env::resources::{is_alive, process_tree};

async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Waits (bounded) until none of `pids` is alive; returns the survivors.
fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pg_dir(pg: &PostgresProcess) -> PathBuf {
    pg.log_path().parent().unwrap().to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_its_data_across_stop_and_start_again() {
    let opts = PostgresOptions { database: "bookings".into(), user: "tester".into(), ..Default::default() };
    let mut pg = PostgresProcess::start(&opts).await.expect("postgres starts");
    let port = pg.port();
    assert_eq!(pg.url(), format!("postgres://tester@127.0.0.1:{port}/bookings"));

    let client = pg_connect(&pg.url()).await.expect("connects with the printed url");
    let owner: String =
        client.query_one("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()", &[]).await.unwrap().get(0);
    assert_eq!(owner, "tester");
    client.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42);").await.unwrap();
    let settings: Vec<String> = client
        .query("SELECT setting FROM pg_settings WHERE name IN ('fsync', 'max_connections', 'synchronous_commit') ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(settings, ["off", "200", "off"]);
    drop(client);

    pg.stop().await.unwrap();
    assert!(pg.pid().is_none());
    assert!(pg_connect(&pg.url()).await.is_err(), "a stopped server refuses connections");

    pg.start_again().await.expect("postgres starts again");
    assert_eq!(pg.port(), port, "same port after start_again");
    let client = pg_connect(&pg.url()).await.unwrap();
    let v: i32 = client.query_one("SELECT v FROM t", &[]).await.unwrap().get(0);
    assert_eq!(v, 42, "data survives a stop");
    drop(client);

    let dir = pg_dir(&pg);
    let pid = pg.pid().unwrap();
    pg.shutdown().await.unwrap();
    assert!(!dir.exists(), "{} is removed", dir.display());
    assert_eq!(survivors(&[pid]), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_postgres_kills_every_backend_and_removes_its_directory() {
    let pg = PostgresProcess::start(&PostgresOptions::default()).await.unwrap();
    assert!(pg.url().ends_with("/perf") && pg.url().starts_with("postgres://perf@127.0.0.1:"));
    // Two open connections: two backends forked by the postmaster.
    let a = pg_connect(&pg.url()).await.unwrap();
    let b = pg_connect(&pg.url()).await.unwrap();
    a.simple_query("SELECT 1").await.unwrap();
    b.simple_query("SELECT 1").await.unwrap();
    let tree = process_tree(pg.pid().unwrap());
    assert!(tree.len() >= 3, "postmaster, its helpers and two backends: {tree:?}");
    let dir = pg_dir(&pg);
    assert!(dir.join("data").join("PG_VERSION").exists());

    drop(pg);

    assert!(!dir.exists(), "{} is removed", dir.display());
    assert_eq!(survivors(&tree), Vec::<u32>::new(), "no process of the tree survives");
    assert!(a.simple_query("SELECT 1").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_answers_stops_and_starts_again_on_the_same_port() {
    let mut r = RedisProcess::start(&RedisOptions::default()).await.expect("redis starts");
    let port = r.port();
    assert_eq!(r.url(), format!("redis://127.0.0.1:{port}"));
    let client = redis::Client::open(r.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut con).await.unwrap();
    let v: String = redis::cmd("GET").arg("k").query_async(&mut con).await.unwrap();
    assert_eq!(v, "v");

    r.stop().await.unwrap();
    assert!(r.pid().is_none());
    assert!(client.get_multiplexed_async_connection().await.is_err(), "a stopped redis refuses connections");

    r.start_again().await.expect("redis starts again");
    assert_eq!(r.port(), port);
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");

    let dir = r.log_path().parent().unwrap().to_path_buf();
    let log = std::fs::read_to_string(r.log_path()).unwrap();
    assert!(log.contains("Ready to accept connections"), "redis logs into its file: {log}");
    let pid = r.pid().unwrap();
    drop(r);
    assert!(!dir.exists());
    assert_eq!(survivors(&[pid]), Vec::<u32>::new());
}

/// CPU spent by a backend that has since exited still counts (the postmaster reaped it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cpu_includes_backends_that_have_exited() {
    use perf::env::resources::sample_process_tree;
    let pg = PostgresProcess::start(&PostgresOptions::default()).await.unwrap();
    let pid = pg.pid().unwrap();
    let before = sample_process_tree(pid).unwrap();
    let client = pg_connect(&pg.url()).await.unwrap();
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    client.simple_query("SELECT count(*) FROM generate_series(1, 20000000)").await.unwrap();
    drop(client);
    assert_eq!(survivors(&[backend as u32]), Vec::<u32>::new(), "the backend exits with its connection");
    let after = sample_process_tree(pid).unwrap();
    assert!(after.cpu_seconds - before.cpu_seconds > 0.2, "a query counting 20 million rows used CPU: before {before:?}, after {after:?}");
    assert!(after.memory_bytes > 1024 * 1024, "{after:?}");
    pg.shutdown().await.unwrap();
}
