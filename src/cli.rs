//! The `tern` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::bootstrap;
use crate::config::Settings;
use crate::delivery::worker::Worker;
use crate::inbound::SmtpServer;
use crate::observability::logs;
use crate::startup::{Application, connect_and_migrate};
use crate::state::AppState;

/// Tern: a self-hosted, HTTP-API-first transactional email platform.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// TOML settings file; `TERN_*` environment variables override it.
    #[arg(long, short, env = "TERN_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the API and docs and/or deliver mail.
    Serve {
        /// `all` (API, a delivery worker, the webhook dispatcher, and the
        /// SMTP server when `smtp.listen` is set), `api`, `worker`,
        /// `webhooks` or `smtp`.
        #[arg(long, value_enum, default_value_t = ProcessRole::All)]
        role: ProcessRole,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage admin users.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create (or refresh) a demo admin, organization, development server,
    /// domain and API key, and print how to send a first message.
    Demo,
    /// Print the OpenAPI document.
    Openapi,
    /// Check the DNS records of the installation (SPF and MX of the return
    /// path, the SPF host, this host's address); exits 1 if any is missing.
    Doctor,
}

/// What a `tern serve` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessRole {
    All,
    Api,
    Worker,
    /// The webhook dispatcher alone.
    Webhooks,
    /// The inbound SMTP server alone (on 127.0.0.1:2525 unless
    /// `smtp.listen` says otherwise).
    Smtp,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user; prints a generated password once if none given.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Read from the environment rather than the command line where possible.
        #[arg(long, env = "TERN_ADMIN_PASSWORD")]
        password: Option<String>,
        /// Also an instance administrator: manages installation-wide
        /// settings (the SMTP server's IP rules), for every tenant.
        #[arg(long)]
        instance_admin: bool,
    },
    /// Print a session token for a user (a one-time login for the API).
    Token {
        #[arg(long)]
        email: String,
    },
}

/// Parses arguments and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        print!("{}", crate::api::openapi_json());
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    logs::init(&settings.log);
    if let Command::Doctor = cli.command {
        return doctor(&settings).await;
    }
    let pool = connect_and_migrate(&settings).await?;
    match cli.command {
        Command::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve { role } => {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let until_stopped = move || {
                let mut stopped = stopped.clone();
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }
            };
            let mut tasks = tokio::task::JoinSet::new();
            if matches!(role, ProcessRole::All | ProcessRole::Worker) {
                let worker = Worker::new(pool.clone(), settings.clone()).await?;
                tracing::info!(worker = worker.id(), "delivery worker started");
                tasks.spawn(worker.run(until_stopped()));
            }
            // Only a process that signs holds the secrets key.
            let state = if matches!(role, ProcessRole::Worker | ProcessRole::Smtp) {
                AppState::without_sealing(pool, settings).await?
            } else {
                AppState::new(pool, settings).await?
            };
            if matches!(role, ProcessRole::All | ProcessRole::Webhooks) {
                let dispatcher = crate::webhooks::dispatcher::Dispatcher::new(state.clone())?;
                tracing::info!("webhook dispatcher started");
                tasks.spawn(dispatcher.run(until_stopped()));
            }
            if role == ProcessRole::Smtp
                || (role == ProcessRole::All && !state.settings.smtp.listen.is_empty())
            {
                let fallback = (role == ProcessRole::Smtp).then(|| SocketAddr::from(([127, 0, 0, 1], 2525)));
                let server = SmtpServer::bind(state.clone(), fallback).await?;
                tracing::info!(addrs = ?server.local_addrs(), "SMTP server listening");
                tasks.spawn(server.run(until_stopped()));
            }
            if let Some(ops) = Application::build_ops(state.clone()).await? {
                tracing::info!(addr = %ops.local_addr()?, "probes and metrics listening");
                tasks.spawn(ops.run_until_stopped(until_stopped()));
            }
            if matches!(role, ProcessRole::All | ProcessRole::Api) {
                let app = Application::build(state).await?;
                let addr = app.local_addr()?;
                tracing::info!(%addr, "Tern API listening; docs at http://{addr}/docs");
                tasks.spawn(app.run_until_stopped(until_stopped()));
            }
            tokio::spawn(async move {
                shutdown_signal().await;
                let _ = stop.send(true);
            });
            while let Some(done) = tasks.join_next().await {
                done??;
            }
            Ok(())
        }
        Command::Admin(AdminCommand::CreateUser {
            email,
            name,
            password,
            instance_admin,
        }) => {
            let (user, generated) = bootstrap::create_admin(&pool, &email, &name, password).await?;
            if instance_admin {
                crate::db::users::set_instance_admin(&pool, user.id, true).await?;
            }
            println!("created admin user {} ({})", user.email, user.id);
            if let Some(password) = generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        Command::Admin(AdminCommand::Token { email }) => {
            let state = AppState::without_sealing(pool, settings).await?;
            let user = crate::db::users::find_by_email(&state.db, &email)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            let (token, expires) = state.sessions.issue(user.id)?;
            println!("{token}");
            eprintln!("(valid until {expires})");
            Ok(())
        }
        Command::Demo => {
            let state = AppState::new(pool, settings.clone()).await?;
            let demo = bootstrap::demo(&state.db, state.sealing()?).await?;
            print!("{}", demo.instructions(&settings));
            Ok(())
        }
        // Both answered before connecting.
        Command::Openapi | Command::Doctor => Ok(()),
    }
}

/// `tern doctor`: needs DNS only, no database.
async fn doctor(settings: &Settings) -> anyhow::Result<()> {
    let resolver = crate::dns::resolver::build(&settings.dns)?;
    let findings = crate::dns::doctor::check(&resolver, settings).await;
    let (report, ok) = crate::dns::doctor::report(&findings);
    println!("DNS records of the installation {}:", settings.public_hostname);
    print!("{report}");
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
