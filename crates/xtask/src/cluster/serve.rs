//! `cargo xtask cluster run`: the topology with the service's default settings (Argon2 and rate
//! limits included, as compose runs it; the logs as JSON lines in files), served until Ctrl-C or
//! until a replica exits.

use std::time::Duration;

use anyhow::Result;

use super::ports::random_hex;
use super::topology::{Cluster, Config};
use super::{Folders, StopSignals, say};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    folders: Folders,
    /// nginx's port (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// The first admin's email. Its password is ADMIN_PASSWORD from the environment, or
    /// generated and printed.
    #[arg(long, default_value = "admin@comanda.local")]
    admin_email: String,
}

pub async fn serve(args: RunArgs) -> Result<()> {
    let mut signals = StopSignals::catch()?;
    let admin_password = match std::env::var("ADMIN_PASSWORD") {
        Ok(password) if !password.is_empty() => password,
        _ => random_hex(12)?,
    };
    let config = Config {
        work: args.folders.work("run")?,
        bin_dir: args.folders.bin_dir()?,
        replicas: 3,
        // The service's defaults, as in compose.yaml, except the logs' format (JSON, in files).
        settings: vec![
            ("ARGON2_MEMORY_KIB", String::new()),
            ("ARGON2_ITERATIONS", String::new()),
            ("REPORT_ROLLUP_INTERVAL_SECONDS", "60".to_owned()),
        ],
        admin_email: args.admin_email,
        admin_password,
        nginx_port: args.port,
        durable: true,
    };
    let mut cluster = Cluster::new(config)?;
    let started = tokio::select! {
        started = cluster.start() => started,
        signal = signals.recv() => Err(anyhow::anyhow!("stopped by {signal} while starting")),
    };
    if let Err(e) = started {
        cluster.stop().await;
        return Err(e);
    }
    print_summary(&cluster);
    loop {
        tokio::select! {
            signal = signals.recv() => {
                say(&format!("{signal}: stopping"));
                break;
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let exited = cluster.replicas.iter_mut().find_map(|r| (!r.proc.alive()).then_some(r));
        if let Some(replica) = exited {
            let status = super::process::describe(replica.proc.exit_status());
            say(&format!("{} ended ({status}); see {}; stopping", replica.name, replica.proc.log.display()));
            break;
        }
    }
    for (name, status) in cluster.stop().await {
        say(&format!("{name}: {}", super::process::describe(status)));
    }
    Ok(())
}

fn print_summary(cluster: &Cluster) {
    let base = format!("http://127.0.0.1:{}", cluster.nginx_port);
    let replicas: Vec<String> = cluster.replicas.iter().map(|r| format!("{} 127.0.0.1:{}", r.name, r.port)).collect();
    println!(
        "
Comanda: {count} replicas behind nginx
  address      {base}   (Swagger UI: {base}/docs/)
  admin        {email} / {password}
  replicas     {replicas}
  Redis        {redis}
  PostgreSQL   psql -h 127.0.0.1 -p {pg} -U postgres {db}
  logs         {logs}, {nginx_logs}
Ctrl-C stops everything (the data under {work} is removed at the next start).
",
        count = cluster.replicas.len(),
        email = cluster.config.admin_email,
        password = cluster.config.admin_password,
        replicas = replicas.join(", "),
        redis = cluster.redis_url(),
        pg = cluster.pg_port(),
        db = super::topology::DATABASE,
        logs = cluster.logs().display(),
        nginx_logs = cluster.nginx_dir().join("logs").display(),
        work = cluster.work.display(),
    );
}
