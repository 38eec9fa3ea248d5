//! End-to-end benchmark: real `tern` processes against PostgreSQL and
//! Postfix's `smtp-sink`. Prints figures, asserts nothing.
//!
//! 1. accept: `tern serve --role api` alone; N sends at C concurrent clients
//!    (throughput, p50/p99 latency). The messages stay queued.
//! 2. drain: a `tern serve --role worker` starts and delivers that queue.
//! 3. end to end: with both running, N more sends; from the first request
//!    to the last recipient recorded `sent`.
//! 4. ceiling: `smtp-source` into the same sink, same size and sessions.
//! 5. webhooks (benches/delivery/webhooks.rs): a `tern serve --role
//!    webhooks` drains a backlog of message events into a receiver that
//!    answers 200 at once, then keeps up with a steady stream (state change
//!    to arrival p50/p99); `wrk` posting the same body to the same receiver
//!    gives the ceiling.
//! 6. end to end with a dispatcher running, the endpoint off (the control)
//!    and on, in turns for `--cost-rounds` rounds: what webhooks cost the
//!    send rate and the CPU, the median of the rounds' ratios.
//! 7. queue claim cost at each depth of `--claim-depths`.
//! 8. inbound (benches/delivery/inbound.rs): `smtp-source` sends signed
//!    messages to a route of `tern serve --role smtp`, a dispatcher POSTs
//!    them to a receiver; accepted and delivered msg/s, store-to-arrival
//!    p50/p99, next to `smtp-source` into `smtp-sink` and into a Postfix
//!    `smtpd` delivering to a maildir.
//!
//! Run with `scripts/bench` (which installs what it needs), or
//! `cargo bench --bench delivery -- --help`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;
use clap::Parser;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[path = "delivery/cpu.rs"]
mod cpu;
#[path = "delivery/inbound.rs"]
mod inbound;
#[path = "delivery/tracking.rs"]
mod tracking;
#[path = "delivery/webhooks.rs"]
mod webhooks;

#[derive(Parser, Debug)]
#[command(about = "Tern delivery benchmark")]
struct Args {
    /// Messages per phase.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Size of each message's text body, in bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Recipients per message (all at the sink's domain).
    #[arg(long, default_value_t = 1)]
    recipients: usize,
    /// Concurrent API clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// SMTP sessions to the sink: Tern's per-domain limit and smtp-source's -s.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Database connections per Tern process.
    #[arg(long, default_value_t = 10)]
    pool: u32,
    /// Message events for the webhooks phases (0 skips them).
    #[arg(long, default_value_t = 10_000)]
    webhook_events: usize,
    /// Events per second offered in the steady webhooks phase.
    #[arg(long, default_value_t = 2000.0)]
    webhook_rate: f64,
    /// Requests a dispatcher has in flight to the one endpoint
    /// (`webhooks.per_endpoint_concurrency`), and wrk's connections.
    #[arg(long, default_value_t = 16)]
    webhook_connections: usize,
    /// Rounds of phase 6 (endpoint off and on, which first alternating);
    /// its figure is the median. Even, so that each order counts alike.
    #[arg(long, default_value_t = 4)]
    cost_rounds: usize,
    /// Messages per round of the tracking phase (0 skips it).
    #[arg(long, default_value_t = 1000)]
    tracking_messages: usize,
    /// Messages for the inbound phase (0 skips it).
    #[arg(long, default_value_t = 5000)]
    inbound_messages: usize,
    /// Queue depths at which to measure the claim query (0 skips).
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    claim_depths: Vec<i64>,
    /// PostgreSQL server (a throwaway database is created on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    database: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut bench = Bench::start(&args).await?;
    // Whatever fails, what was started stops and the database goes.
    let result = match bench.prepare(&args).await {
        Ok(()) => bench.run(&args).await,
        Err(err) => Err(err),
    };
    bench.stop().await;
    result
}

/// Everything the run started; stopped in [`Bench::stop`].
struct Bench {
    admin: PgPool,
    db: PgPool,
    db_name: String,
    db_url: String,
    sink: Child,
    sink_port: u16,
    config: PathBuf,
    processes: Vec<Child>,
    http: String,
    api_key: String,
    secrets_key: [u8; 32],
    inbound: Option<inbound::Setup>,
}

impl Bench {
    /// Starts the sink and the inbound phase's DNS; nothing else yet, so
    /// that [`Bench::stop`] undoes whatever [`Bench::prepare`] got to.
    async fn start(args: &Args) -> anyhow::Result<Bench> {
        let admin = PgPool::connect(&format!("{}/postgres", args.database))
            .await
            .context("connecting to PostgreSQL")?;
        let db_name = format!("tern_bench_{}", std::process::id());
        let db_url = format!("{}/{db_name}", args.database);
        let sink_port = free_port()?;
        let mut sink = Command::new("smtp-sink")
            .args(["-u", "nobody", &format!("127.0.0.1:{sink_port}"), "1024"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting smtp-sink (Debian package postfix)")?;
        let inbound = match inbound::Setup::start(args.size, free_udp_port()?, free_port()?, &db_name) {
            Ok(inbound) => inbound,
            Err(err) => {
                let _ = sink.kill();
                let _ = sink.wait();
                return Err(err);
            }
        };
        Ok(Bench {
            admin,
            db: PgPoolOptions::new().max_connections(4).connect_lazy(&db_url)?,
            config: std::env::temp_dir().join(format!("{db_name}.toml")),
            db_name,
            db_url,
            sink,
            sink_port,
            processes: Vec::new(),
            http: format!("127.0.0.1:{}", free_port()?),
            api_key: String::new(),
            secrets_key: rand::random::<[u8; 32]>(),
            inbound: Some(inbound),
        })
    }

    /// Writes Tern's configuration, creates and migrates the database, and
    /// makes the demo tenant live, with its key.
    async fn prepare(&mut self, args: &Args) -> anyhow::Result<()> {
        let inbound = self
            .inbound
            .as_ref()
            .map(inbound::Setup::config)
            .unwrap_or_default();
        std::fs::write(
            &self.config,
            format!(
                "public_hostname = \"tern.bench\"\n\
                 [database]\nurl = \"{db_url}\"\nmax_connections = {pool}\n\
                 [http]\nlisten = \"{http}\"\n\
                 [log]\nfilter = \"warn\"\n\
                 [secrets]\nkey = \"{secrets}\"\n\
                 [limits]\nmax_recipients = {max_recipients}\n\
                 sends_per_second_per_key = 0\nconcurrent_sends_per_key = 0\n\
                 [webhooks]\nallow_private_targets = true\nallow_http = true\n\
                 per_endpoint_concurrency = {hook_connections}\n\
                 [delivery]\nconcurrency = {sessions}\nper_domain_concurrency = {sessions}\n\
                 batch_size = {batch}\n\
                 [[delivery.transports]]\ndomain = \"bench.test\"\nhost = \"127.0.0.1\"\nport = {sink_port}\n\
                 {inbound}",
                db_url = self.db_url,
                http = self.http,
                sink_port = self.sink_port,
                pool = args.pool,
                secrets = base64::engine::general_purpose::STANDARD.encode(self.secrets_key),
                max_recipients = args.recipients.max(50),
                sessions = args.sessions,
                batch = (args.sessions * 4).max(50),
                hook_connections = args.webhook_connections,
            ),
        )?;
        let create = format!("CREATE DATABASE {}", self.db_name);
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&self.admin)
            .await?;
        tern(&self.config, &["migrate"])?
            .wait()
            .context("tern migrate")?
            .success()
            .then_some(())
            .context("tern migrate failed")?;
        let key = tern::sealing::SealingKey::from_bytes(&self.secrets_key)?;
        self.api_key = tern::bootstrap::demo(&self.db, &key).await?.api_key;
        sqlx::query("UPDATE servers SET mode = 'live'")
            .execute(&self.db)
            .await?;
        sqlx::query("UPDATE domains SET verified_at = now()")
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn run(&mut self, args: &Args) -> anyhow::Result<()> {
        println!(
            "Tern delivery benchmark: {} messages/phase, {} B text, {} recipient(s) each, \
             {} API clients, {} SMTP sessions, pool {} per process, {} cores",
            args.messages,
            args.size,
            args.recipients,
            args.concurrency,
            args.sessions,
            args.pool,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let body = Arc::new(message_body(args.size, args.recipients));
        let client = reqwest::Client::new();

        self.processes
            .push(tern(&self.config, &["serve", "--role", "api"])?);
        self.wait_ready(&client).await?;
        // Warm-up: connections, prepared statements, the DKIM key cache.
        let warm_up = 200;
        self.load(&client, &body, warm_up, args.concurrency).await?;
        let total = |n: usize| (n * args.recipients) as i64;

        let before_accept = self.transactions().await?;
        let accept = self.load(&client, &body, args.messages, args.concurrency).await?;
        accept.print("1. accept (API only, delivery stopped)");
        let after_accept = self.transactions().await?;
        let per_message = |from: i64, to: i64, n: usize| (to - from) as f64 / n as f64;
        println!(
            "   PostgreSQL transactions per message: {:.2}",
            per_message(before_accept, after_accept, args.messages)
        );
        if args.tracking_messages > 0 {
            self.tracking(&client, args).await?;
        }

        let drain_start = SystemTime::now();
        self.processes
            .push(tern(&self.config, &["serve", "--role", "worker"])?);
        let queued = total(warm_up + args.messages);
        let drain = self
            .wait_sent(queued, drain_start, Duration::from_secs(600))
            .await?;
        let drain_rate = (warm_up + args.messages) as f64 / drain.as_secs_f64();
        println!(
            "2. drain (worker only): {} queued messages delivered in {:.2} s = {:.0} msg/s \
             (includes worker start-up)",
            warm_up + args.messages,
            drain.as_secs_f64(),
            drain_rate
        );
        let after_drain = self.transactions().await?;
        println!(
            "   PostgreSQL transactions per message: {:.2}",
            per_message(after_accept, after_drain, warm_up + args.messages)
        );

        let e2e_start = SystemTime::now();
        let meter = cpu::Meter::start(&self.db, &["API", "worker"], &self.processes).await;
        let both = self.load(&client, &body, args.messages, args.concurrency).await?;
        let e2e = self
            .wait_sent(queued + total(args.messages), e2e_start, Duration::from_secs(600))
            .await?;
        let e2e_rate = args.messages as f64 / e2e.as_secs_f64();
        both.print("3a. accept while delivering");
        println!(
            "3b. end to end (accept -> sign -> store -> deliver): {} messages in {:.2} s = {:.0} msg/s",
            args.messages,
            e2e.as_secs_f64(),
            e2e_rate
        );
        let e2e_cpu = meter.machine_ms(args.messages);
        let (p50, p99) = self.delivery_latency(queued).await?;
        println!("    accept-to-sent latency: p50 {p50:.0} ms, p99 {p99:.0} ms");
        println!(
            "    CPU per message: {}; the whole machine {e2e_cpu:.2} ms",
            meter.parts(&self.db, args.messages).await
        );
        let after_e2e = self.transactions().await?;
        println!(
            "    PostgreSQL transactions per message: {:.2}",
            per_message(after_drain, after_e2e, args.messages)
        );
        self.stop_tern();

        let ceiling = self.ceiling(args)?;
        println!(
            "4. ceiling: smtp-source -> smtp-sink, {} messages of {} B to {} recipient(s) over {} \
             reused sessions: {:.0} msg/s",
            args.messages, args.size, args.recipients, args.sessions, ceiling
        );
        println!(
            "   Tern delivered / ceiling: drain {:.1}%, end to end {:.1}%",
            100.0 * drain_rate / ceiling,
            100.0 * e2e_rate / ceiling
        );

        if args.webhook_events > 0 {
            self.webhooks(args, &client, &body, (e2e_rate, e2e_cpu)).await?;
        }

        if args.inbound_messages > 0 {
            self.inbound(args).await?;
        }

        for &depth in args.claim_depths.iter().filter(|d| **d > 0) {
            let (mean, p99) = self.claim_cost(depth).await?;
            println!(
                "7. claim of a 50-recipient batch at queue depth {depth}: mean {mean:.2} ms, p99 {p99:.2} ms"
            );
        }
        Ok(())
    }

    /// Phases 5 and 6; `without` is phase 3's rate and CPU per message.
    async fn webhooks(
        &mut self,
        args: &Args,
        client: &reqwest::Client,
        body: &Arc<String>,
        without: (f64, f64),
    ) -> anyhow::Result<()> {
        let (e2e_rate, e2e_cpu) = without;
        let n = args.webhook_events;
        let receiver = webhooks::Receiver::start().await?;
        webhooks::add_endpoint(&self.db, &self.secrets_key, &receiver.url).await?;
        let before = self.transactions().await?;
        webhooks::publish(&self.db, n, 1000, None).await?;
        let start = SystemTime::now();
        self.processes
            .push(tern(&self.config, &["serve", "--role", "webhooks"])?);
        let drained = webhooks::drained(&receiver, n, start).await?;
        println!(
            "5a. webhooks drain: {n} queued message events delivered to a local receiver in \
             {:.2} s = {:.0} events/s ({} requests in flight; includes dispatcher start-up)",
            n as f64 / drained,
            drained,
            args.webhook_connections
        );
        let after = self.transactions().await?;
        println!(
            "    PostgreSQL transactions per event (publishing included): {:.2}",
            (after - before) as f64 / n as f64
        );
        let (rate, p50, p99) = webhooks::steady(&self.db, &receiver, n, args.webhook_rate).await?;
        println!(
            "5b. webhooks steady: {n} events offered at {:.0}/s, delivered at {rate:.0} events/s; \
             state change to arrival p50 {p50:.0} ms, p99 {p99:.0} ms",
            args.webhook_rate
        );
        let (ceiling, c50, c99) =
            webhooks::ceiling(&receiver, args.webhook_connections, 10, &std::env::temp_dir()).await?;
        println!(
            "5c. ceiling: wrk posting the same body to the same receiver over {} connections: \
             {ceiling:.0} requests/s, p50 {c50}, p99 {c99}; dispatcher drain / ceiling {:.1}%",
            args.webhook_connections,
            100.0 * drained / ceiling
        );

        // Phase 6: end to end twice with the same processes and a database
        // in the same state, the endpoint off and then on: what it costs.
        self.processes
            .push(tern(&self.config, &["serve", "--role", "api"])?);
        self.processes
            .push(tern(&self.config, &["serve", "--role", "worker"])?);
        self.wait_ready(client).await?;
        let endpoint_on = |on: bool| {
            sqlx::query("UPDATE webhook_endpoints SET enabled = $1")
                .bind(on)
                .execute(&self.db)
        };
        // Off and on in turns, so that a drift of the machine's speed
        // (a shared VM's is several per cent within a minute) falls on both
        // alike; each round's pair gives one ratio, and the median is the
        // figure. Which of the pair goes first alternates (off first in odd
        // rounds): every pass leaves the database bigger, so the second
        // one always runs on more rows than the first.
        let mut rounds = Vec::new();
        for round in 1..=args.cost_rounds.max(1) {
            // What autovacuum does on an installation (this machine's
            // PostgreSQL may run without it): otherwise each round runs on
            // the dead rows and index entries of all the rounds before.
            sqlx::query("VACUUM (ANALYZE)").execute(&self.db).await?;
            let mut off = None;
            let mut on = None;
            let order = if round % 2 == 1 {
                [false, true]
            } else {
                [true, false]
            };
            for endpoint in order {
                endpoint_on(endpoint).await?;
                if endpoint {
                    let label = format!("6.{round}b");
                    on = Some(
                        self.end_to_end(args, client, body, Some(&receiver), &label)
                            .await?,
                    );
                } else {
                    let label = format!("6.{round}a");
                    off = Some(self.end_to_end(args, client, body, None, &label).await?);
                }
            }
            let (Some(off), Some(on)) = (off, on) else {
                bail!("round {round} ran without both passes");
            };
            let (rate, cpu) = ((on.0 - off.0) / off.0, (on.1 - off.1) / off.1);
            println!(
                "    round {round}: send rate {:+.1}% with the endpoint on, CPU per message {:+.1}%",
                100.0 * rate,
                100.0 * cpu
            );
            rounds.push((rate, cpu, on));
        }
        // Of an even number of rounds, the mean of the middle two.
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            let middle = values.len() / 2;
            if values.len().is_multiple_of(2) {
                (values[middle - 1] + values[middle]) / 2.0
            } else {
                values[middle]
            }
        };
        let rate = median(rounds.iter().map(|r| r.0).collect());
        let cpu = median(rounds.iter().map(|r| r.1).collect());
        let on_rate = median(rounds.iter().map(|r| r.2.0).collect());
        let on_cpu = median(rounds.iter().map(|r| r.2.1).collect());
        println!(
            "6c. what the webhooks cost, median of {} rounds: send rate {:+.1}% against the \
             endpoint off in the same round ({:+.1}% against phase 3's {e2e_rate:.0} msg/s); CPU \
             per message {:+.1}% ({:+.1}% against phase 3's {e2e_cpu:.2} ms)",
            rounds.len(),
            100.0 * rate,
            100.0 * (on_rate - e2e_rate) / e2e_rate,
            100.0 * cpu,
            100.0 * (on_cpu - e2e_cpu) / e2e_cpu,
        );
        self.stop_tern();
        Ok(())
    }

    /// One round of phase 6: `args.messages` sends through the running
    /// API and worker until every recipient is `sent` and, with a
    /// receiver, every `message.sent` webhook arrived. Returns msg/s (to
    /// the last `sent`) and the machine's CPU per message in ms (to the
    /// last arrival: all the work the sends caused).
    async fn end_to_end(
        &self,
        args: &Args,
        client: &reqwest::Client,
        body: &Arc<String>,
        receiver: Option<&webhooks::Receiver>,
        label: &str,
    ) -> anyhow::Result<(f64, f64)> {
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM recipients WHERE status = 'sent'")
            .fetch_one(&self.db)
            .await?;
        let hooks_before = receiver.map_or(0, webhooks::Receiver::count);
        let tx_before = self.transactions().await?;
        let meter = cpu::Meter::start(&self.db, &["dispatcher", "API", "worker"], &self.processes).await;
        let start = SystemTime::now();
        let load = self.load(client, body, args.messages, args.concurrency).await?;
        let took = self
            .wait_sent(
                sent + (args.messages * args.recipients) as i64,
                start,
                Duration::from_secs(600),
            )
            .await?;
        let rate = args.messages as f64 / took.as_secs_f64();
        let published = args.messages * args.recipients;
        if let Some(receiver) = receiver {
            receiver
                .wait_for(hooks_before + published, Duration::from_secs(600))
                .await?;
        }
        let machine_cpu = meter.machine_ms(args.messages);
        let endpoint = if receiver.is_some() { "on" } else { "off" };
        load.print(&format!(
            "{label}. accept while delivering, webhook endpoint {endpoint}"
        ));
        println!(
            "    end to end: {} messages in {:.2} s = {rate:.0} msg/s{}",
            args.messages,
            took.as_secs_f64(),
            if receiver.is_some() {
                format!("; all {published} message.sent webhooks arrived")
            } else {
                String::new()
            }
        );
        println!(
            "    CPU per message: {}; the whole machine {machine_cpu:.2} ms",
            meter.parts(&self.db, args.messages).await
        );
        let tx_after = self.transactions().await?;
        println!(
            "    PostgreSQL transactions per message: {:.2}",
            (tx_after - tx_before) as f64 / args.messages as f64
        );
        Ok((rate, machine_cpu))
    }

    /// Phase 8.
    async fn inbound(&mut self, args: &Args) -> anyhow::Result<()> {
        let n = args.inbound_messages;
        let (file, smtp_port) = match &self.inbound {
            Some(setup) => (setup.message.clone(), setup.smtp_port),
            None => bail!("the inbound setup is missing"),
        };
        let receiver = webhooks::Receiver::start().await?;
        inbound::add_route(&self.db, &self.secrets_key, &receiver.url).await?;
        self.processes
            .push(tern(&self.config, &["serve", "--role", "smtp"])?);
        self.processes
            .push(tern(&self.config, &["serve", "--role", "webhooks"])?);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the SMTP server did not start");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = |messages: usize, to: &'static str, port: u16| {
            let file = file.clone();
            let sessions = args.sessions;
            tokio::task::spawn_blocking(move || inbound::smtp_source(&file, sessions, messages, to, port))
        };
        // Warm-up: connections, prepared statements, the resolver.
        let warm_up = 200;
        source(warm_up, inbound::ROUTE, smtp_port).await??;
        receiver.wait_for(warm_up, Duration::from_secs(120)).await?;

        let meter = cpu::Meter::start(&self.db, &["SMTP server", "dispatcher"], &self.processes).await;
        let started = SystemTime::now();
        let accepted = source(n, inbound::ROUTE, smtp_port).await??;
        receiver.wait_for(warm_up + n, Duration::from_secs(600)).await?;
        let arrivals = receiver.arrivals();
        let last = arrivals.iter().map(|(_, at)| *at).max().unwrap_or(started);
        let delivered = last.duration_since(started)?;
        let machine_cpu = meter.machine_ms(n);
        let cpu = meter.parts(&self.db, n).await;
        let passed: (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE checks->'dkim'->0->>'result' = 'pass'),
                    count(*) FILTER (WHERE checks->'spf'->>'result' = 'pass')
             FROM inbound_messages",
        )
        .fetch_one(&self.db)
        .await?;
        let recent: Vec<(String, SystemTime)> =
            arrivals.into_iter().filter(|(_, at)| *at >= started).collect();
        let (p50, p99) = inbound::latencies(&self.db, &recent).await?;
        self.stop_tern();
        let sink_port = self.sink_port;
        let ceiling = source(n, "r@bench.test", sink_port).await??;
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        println!(
            "8a. inbound accepted: {n} DKIM-signed messages of {size} B over {} sessions stored \
             with SPF, DKIM, DMARC and iprev checked in {:.2} s = {:.0} msg/s",
            args.sessions,
            accepted.as_secs_f64(),
            n as f64 / accepted.as_secs_f64()
        );
        println!(
            "8b. inbound to the endpoint (parsed payloads): all {n} in {:.2} s = {:.0} msg/s; \
             stored to arrival p50 {p50:.0} ms, p99 {p99:.0} ms",
            delivered.as_secs_f64(),
            n as f64 / delivered.as_secs_f64()
        );
        println!(
            "    checks passed: DKIM {} and SPF {} of {} messages; CPU per message: {}; the whole \
             machine {machine_cpu:.2} ms",
            passed.0,
            passed.1,
            warm_up + n,
            cpu
        );
        println!(
            "8c. ceiling: smtp-source -> smtp-sink, the same file and sessions: {:.0} msg/s; \
             Tern accepted / ceiling {:.1}%",
            n as f64 / ceiling.as_secs_f64(),
            100.0 * ceiling.as_secs_f64() / accepted.as_secs_f64()
        );
        let postfix = inbound::Postfix::start(free_port()?, &self.db_name)?;
        let started = Instant::now();
        let to = "inbox@bench-in.test";
        let queued = source(n, to, postfix.port).await;
        let queued = match queued {
            Ok(Ok(took)) => took,
            Ok(Err(err)) => {
                postfix.stop();
                return Err(err);
            }
            Err(err) => {
                postfix.stop();
                return Err(err.into());
            }
        };
        while postfix.delivered() < n && started.elapsed() < Duration::from_secs(600) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let delivered = started.elapsed();
        let count = postfix.delivered();
        postfix.stop();
        println!(
            "8d. Postfix smtpd (no SPF/DKIM/DMARC checks), the same file and sessions: {n} queued in \
             {:.2} s = {:.0} msg/s, {count} delivered into a maildir in {:.2} s = {:.0} msg/s",
            queued.as_secs_f64(),
            n as f64 / queued.as_secs_f64(),
            delivered.as_secs_f64(),
            count as f64 / delivered.as_secs_f64()
        );
        Ok(())
    }

    /// Phase 1b: the accept path with a 50 KB HTML message of 30 links,
    /// untracked and tracked in alternating rounds; the messages are
    /// removed afterwards so that the drain phase sees only its own.
    async fn tracking(&self, client: &reqwest::Client, args: &Args) -> anyhow::Result<()> {
        let plain = Arc::new(tracking::html_body(false));
        let tracked = Arc::new(tracking::html_body(true));
        let n = args.tracking_messages;
        self.load(client, &tracked, 100, args.concurrency).await?;
        let (mut plain_secs, mut tracked_secs) = (0.0, 0.0);
        let (mut plain_p50, mut tracked_p50) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            for (body, secs, p50) in [
                (&plain, &mut plain_secs, &mut plain_p50),
                (&tracked, &mut tracked_secs, &mut tracked_p50),
            ] {
                let mut load = self.load(client, body, n, args.concurrency).await?;
                *secs += load.elapsed.as_secs_f64();
                load.latencies.sort();
                p50.push(load.latencies[load.latencies.len() / 2].as_secs_f64() * 1000.0);
            }
        }
        let rate = |secs: f64| (2 * n) as f64 / secs;
        let median = |v: &[f64]| (v[0] + v[1]) / 2.0;
        println!(
            "1b. accept, 50 KB HTML with 30 links ({} KB body), 2 x {n} each, alternating:",
            plain.len() / 1024
        );
        println!(
            "   untracked: {:.0} msg/s, p50 {:.1} ms; tracked (opens + clicks): {:.0} msg/s, p50 {:.1} ms; \
             tracking costs {:.1}% of the rate",
            rate(plain_secs),
            median(&plain_p50),
            rate(tracked_secs),
            median(&tracked_p50),
            (1.0 - rate(tracked_secs) / rate(plain_secs)) * 100.0
        );
        sqlx::query("DELETE FROM messages WHERE subject = 'Tracking benchmark'")
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = client.get(format!("http://{}/readyz", self.http)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("tern did not become ready")
    }

    /// Transactions committed in the benchmark's database so far (includes
    /// the benchmark's own few polling queries). Statistics reach the view
    /// within a second of a backend going idle.
    async fn transactions(&self) -> anyhow::Result<i64> {
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        Ok(
            sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                .fetch_one(&self.db)
                .await?,
        )
    }

    /// Sends `n` messages from `concurrency` clients; returns the timings.
    async fn load(
        &self,
        client: &reqwest::Client,
        body: &Arc<String>,
        n: usize,
        concurrency: usize,
    ) -> anyhow::Result<Load> {
        let next = Arc::new(AtomicUsize::new(0));
        let url = format!("http://{}/v1/messages", self.http);
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (client, body, next, url) = (client.clone(), body.clone(), next.clone(), url.clone());
            let auth = format!("Bearer {}", self.api_key);
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("authorization", &auth)
                        .header("content-type", "application/json")
                        .body(body.as_str().to_owned())
                        .send()
                        .await?;
                    let status = response.status();
                    let text = response.text().await?;
                    if status.as_u16() != 202 {
                        bail!("send answered {status}: {text}");
                    }
                    latencies.push(sent.elapsed());
                }
                Ok(latencies)
            });
        }
        let mut latencies = Vec::with_capacity(n);
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done??);
        }
        Ok(Load {
            elapsed: start.elapsed(),
            latencies,
            concurrency,
        })
    }

    /// Waits until nothing is queued or deferred (polling only the partial
    /// index of due work), fails unless all `n` are sent, and returns how
    /// long after `since` the last recipient was recorded.
    async fn wait_sent(&self, n: i64, since: SystemTime, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            let waiting: i64 =
                sqlx::query_scalar("SELECT count(*) FROM recipients WHERE status IN ('queued', 'deferred')")
                    .fetch_one(&self.db)
                    .await?;
            if waiting == 0 {
                break;
            }
            if start.elapsed() > limit {
                bail!("{waiting} recipients still waiting after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (sent, last): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'sent'), extract(epoch FROM max(updated_at))::float8
             FROM recipients",
        )
        .fetch_one(&self.db)
        .await?;
        if sent != n {
            let reply: Option<String> = sqlx::query_scalar(
                "SELECT last_reply FROM recipients WHERE status <> 'sent' AND last_reply IS NOT NULL LIMIT 1",
            )
            .fetch_optional(&self.db)
            .await?
            .flatten();
            bail!("{sent} of {n} recipients sent; a failure: {reply:?}");
        }
        let since = since.duration_since(UNIX_EPOCH)?.as_secs_f64();
        Ok(Duration::from_secs_f64((last.unwrap_or(since) - since).max(0.0)))
    }

    /// Accept-to-sent latency percentiles of the recipients after the first `skip`.
    async fn delivery_latency(&self, skip: i64) -> anyhow::Result<(f64, f64)> {
        let row: (Option<f64>, Option<f64>) = sqlx::query_as(
            "WITH l AS (
                SELECT extract(epoch FROM r.updated_at - m.created_at) * 1000 AS ms
                FROM recipients r JOIN messages m ON m.id = r.message_id
                ORDER BY m.created_at OFFSET $1
             )
             SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::float8,
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::float8 FROM l",
        )
        .bind(skip)
        .fetch_one(&self.db)
        .await?;
        Ok((row.0.unwrap_or(0.0), row.1.unwrap_or(0.0)))
    }

    /// Messages per second smtp-source gets into the sink.
    fn ceiling(&self, args: &Args) -> anyhow::Result<f64> {
        let start = Instant::now();
        let status = Command::new("smtp-source")
            .args([
                "-d",
                "-s",
                &args.sessions.to_string(),
                "-m",
                &args.messages.to_string(),
                "-l",
                &args.size.to_string(),
                "-r",
                &args.recipients.to_string(),
                "-f",
                "bench@example.com",
                "-t",
                "r@bench.test",
                &format!("127.0.0.1:{}", self.sink_port),
            ])
            .stdout(Stdio::null())
            .status()
            .context("running smtp-source")?;
        if !status.success() {
            bail!("smtp-source failed: {status}");
        }
        Ok(args.messages as f64 / start.elapsed().as_secs_f64())
    }

    /// Fills the queue to `depth` due recipients and times claiming (and
    /// releasing) 50 of them, 200 times.
    async fn claim_cost(&self, depth: i64) -> anyhow::Result<(f64, f64)> {
        let message: uuid::Uuid = sqlx::query_scalar("SELECT id FROM messages LIMIT 1")
            .fetch_one(&self.db)
            .await?;
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM recipients WHERE status = 'queued'")
            .fetch_one(&self.db)
            .await?;
        if depth > queued {
            sqlx::query(
                "INSERT INTO recipients (id, message_id, server_id, address, domain, kind, status,
                                         next_attempt_at)
                 SELECT gen_random_uuid(), m.id, m.server_id, 'q' || g || '@bench.test', 'bench.test', 'to',
                        'queued', now() - g * interval '1 ms'
                 FROM messages m, generate_series(1, $2) g WHERE m.id = $1",
            )
            .bind(message)
            .bind(depth - queued)
            .execute(&self.db)
            .await?;
            sqlx::query("ANALYZE recipients").execute(&self.db).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.db_url)
            .await?;
        let lease = Duration::from_secs(300);
        let mut times = Vec::with_capacity(200);
        for _ in 0..200 {
            let start = Instant::now();
            let claimed = tern::db::queue::claim(&pool, "bench", 50, lease).await?;
            times.push(start.elapsed());
            let ids: Vec<uuid::Uuid> = claimed.iter().map(|r| r.id).collect();
            tern::db::queue::release_all(&pool, "bench", &ids).await?;
        }
        times.sort();
        let mean = times.iter().sum::<Duration>().as_secs_f64() * 1000.0 / times.len() as f64;
        let p99 = times[times.len() * 99 / 100].as_secs_f64() * 1000.0;
        Ok((mean, p99))
    }

    fn stop_tern(&mut self) {
        for mut process in self.processes.drain(..) {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    async fn stop(mut self) {
        self.stop_tern();
        if let Some(setup) = self.inbound.take() {
            setup.stop();
        }
        let _ = self.sink.kill();
        let _ = self.sink.wait();
        let _ = std::fs::remove_file(&self.config);
        self.db.close().await;
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name);
        if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&self.admin).await {
            eprintln!("dropping {}: {err}", self.db_name);
        }
    }
}

/// Latencies of one load phase.
struct Load {
    elapsed: Duration,
    latencies: Vec<Duration>,
    concurrency: usize,
}

impl Load {
    fn print(mut self, title: &str) {
        self.latencies.sort();
        let at = |q: f64| {
            let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len().saturating_sub(1));
            self.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{title}: {} sends in {:.2} s = {:.0} sends/s at {} clients; latency p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            self.concurrency,
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

/// A send request: a text body of about `size` bytes to `recipients`
/// addresses at the sink's domain.
fn message_body(size: usize, recipients: usize) -> String {
    let line = "The quick brown fox jumps over the lazy dog 0123456789.\n";
    let text = line.repeat(size / line.len() + 1)[..size].to_string();
    let to: Vec<String> = (0..recipients).map(|i| format!("r{i}@bench.test")).collect();
    serde_json::json!({
        "from": "Bench <bench@example.com>",
        "to": to,
        "subject": "Benchmark message",
        "text": text,
    })
    .to_string()
}

/// Starts `tern`: this build's, or the binary `BENCH_TERN_BIN` names (to
/// measure another build with the same benchmark, in turns; not `TERN_…`,
/// which Tern's settings would read).
fn tern(config: &PathBuf, args: &[&str]) -> anyhow::Result<Child> {
    // Its connections are named for the benchmark's CPU split by role.
    let role = args.last().filter(|_| args.len() > 1).unwrap_or(&"tern");
    let binary = std::env::var_os("BENCH_TERN_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tern").into());
    Command::new(binary)
        .env("PGAPPNAME", format!("tern-{role}"))
        .arg("--config")
        .arg(config)
        .args(args)
        .spawn()
        .with_context(|| format!("starting tern {args:?}"))
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
