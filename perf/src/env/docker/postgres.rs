//! The PostgreSQL container, as the official `postgres` image defines it: the user, password
//! and database from `POSTGRES_USER`, `POSTGRES_PASSWORD` and `POSTGRES_DB`, the data in
//! `/var/lib/postgresql/data` (a named volume of the run, so a stop and start keeps it), port
//! 5432; ready when a real connection runs `SELECT 1`.

use testcontainers::core::Mount;

use super::ready::PROBE_TIMEOUT;

/// The port PostgreSQL listens on inside the network.
pub(super) const PORT: u16 = 5432;

/// The container's environment.
pub(super) fn env(user: &str, password: &str, database: &str) -> Vec<(String, String)> {
    vec![
        ("POSTGRES_USER".to_string(), user.to_string()),
        ("POSTGRES_PASSWORD".to_string(), password.to_string()),
        ("POSTGRES_DB".to_string(), database.to_string()),
    ]
}

/// The server's command line: `postgres -c name=value` for each of the gate's settings (the
/// official image and ours both read `-c` arguments as the server's): the statements'
/// statistics, and throwaway data as the local backend has it.
pub(super) fn command() -> Vec<String> {
    let mut cmd = vec!["postgres".to_string()];
    let settings = crate::env::types::POSTGRES_DURABILITY_SETTINGS.into_iter().chain(crate::env::types::POSTGRES_STATEMENT_SETTINGS);
    for (name, value) in settings {
        cmd.extend(["-c".to_string(), format!("{name}={value}")]);
    }
    cmd
}

/// The run's data volume, mounted where the image keeps its data.
pub(super) fn data_mount(volume: &str) -> Mount {
    Mount::volume_mount(volume.to_string(), "/var/lib/postgresql/data")
}

/// Connects to PostgreSQL on 127.0.0.1:`port` with the password and runs `SELECT 1`.
/// The error never contains the password (tokio-postgres does not print it).
pub async fn answers(port: u16, user: &str, password: &str, database: &str) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(port).user(user).password(password).dbname(database).connect_timeout(PROBE_TIMEOUT);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to postgres on 127.0.0.1:{port}: {}", crate::env::procs::error_chain(&e)))?;
    let driver = tokio::spawn(connection);
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| format!("SELECT 1 on 127.0.0.1:{port}: {}", crate::env::procs::error_chain(&e)));
    drop(client);
    driver.abort();
    result
}
