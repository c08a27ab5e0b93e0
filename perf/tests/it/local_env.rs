//! The local backend end to end with real PostgreSQL and Redis and a stand-in app
//! (tests/it/local_support/testapp.py): start, rendered environment, service control,
//! resources, and a shutdown that leaves nothing behind.

use crate::local_support::{get, options, plan, survivors};
use perf::env::resources::process_tree;
use perf::env::{BackendKind, Environment, Service};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_environment_runs_the_app_against_real_services() {
    let logs = tempfile::tempdir().unwrap();
    let plan = plan("", "[\"true\"]", "\"--port={{app.port}}\"", "30s");
    let mut env = Environment::start(BackendKind::Local, &plan, &options(logs.path(), CancellationToken::new()))
        .await
        .expect("the local environment starts");
    let Environment::Local(local) = &env else { panic!("asked for the local backend") };
    let dir = local.dir().to_path_buf();
    assert!(dir.join("app.log").is_file());

    let services = env.services();
    let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["app", "postgres", "redis"]);
    let app_url = env.app_url().to_string();
    assert_eq!(services[0].url, app_url);
    assert!(app_url.starts_with("http://127.0.0.1:"), "{app_url}");
    assert!(services[1].url.starts_with("postgres://appuser@127.0.0.1:") && services[1].url.ends_with("/app"));
    assert!(services[2].url.starts_with("redis://127.0.0.1:"));

    // The app got its environment and arguments rendered from the plan's templates.
    let seen: serde_json::Value = get(&format!("{app_url}/env")).await.unwrap().json().await.unwrap();
    let port = app_url.rsplit(':').next().unwrap();
    assert_eq!(seen["DATABASE_URL"], services[1].url.as_str());
    assert_eq!(seen["REDIS_URL"], services[2].url.as_str());
    assert_eq!(seen["LISTEN_ADDR"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(seen["argv"], serde_json::json!([format!("--port={port}")]));

    // The app's database answers at the printed URL.
    let (db, conn) = tokio_postgres::connect(&services[1].url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    db.simple_query("SELECT 1").await.unwrap();

    let res = env.resources().await;
    let kinds: Vec<Service> = res.iter().map(|(s, _)| *s).collect();
    assert_eq!(kinds, [Service::App, Service::Postgres, Service::Redis]);
    for (s, sample) in &res {
        assert!(sample.memory_bytes > 0 && sample.cpu_seconds >= 0.0, "{s:?}: {sample:?}");
    }

    // Stop and start each service: same address afterwards.
    env.stop_service(Service::App).await.unwrap();
    assert!(get(&format!("{app_url}/health")).await.is_err(), "a stopped app refuses connections");
    env.start_service(Service::App).await.unwrap();
    assert_eq!(get(&format!("{app_url}/health")).await.unwrap().status(), 200);

    env.stop_service(Service::Postgres).await.unwrap();
    assert!(db.simple_query("SELECT 1").await.is_err(), "the connection died with the server");
    env.start_service(Service::Postgres).await.unwrap();
    let (db, conn) = tokio_postgres::connect(&services[1].url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    db.simple_query("SELECT 1").await.unwrap();
    drop(db);

    env.stop_service(Service::Redis).await.unwrap();
    env.start_service(Service::Redis).await.unwrap();
    let client = redis::Client::open(services[2].url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    drop(con);

    let tree = process_tree(std::process::id());
    assert!(tree.len() >= 4, "this test, the app, redis and postgres: {tree:?}");
    env.shutdown().await.unwrap();
    let children: Vec<u32> = tree.into_iter().skip(1).collect();
    assert_eq!(survivors(&children), Vec::<u32>::new(), "nothing the environment started survives");
    assert!(!dir.exists(), "{} is removed", dir.display());
    assert!(std::fs::read_dir(logs.path()).unwrap().next().is_none(), "no logs are copied on success");
}
