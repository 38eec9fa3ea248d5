//! Where the CPU went during a phase: the whole machine, each Tern process,
//! PostgreSQL (every `postgres` process, backends that exited included
//! through the postmaster's reaped-children time), split by whose
//! connection it worked for (`application_name`, which the benchmark sets
//! to `tern-<role>`), and this benchmark process (its load generators and
//! receivers).

use std::collections::HashMap;
use std::process::Child;

use sqlx::PgPool;

/// CPU seconds used so far, taken at the start of a phase.
pub struct Meter {
    machine: f64,
    processes: Vec<(&'static str, u32, f64)>,
    postgres: f64,
    /// Backends serving Tern's processes, by pid: (role, CPU so far).
    backends: HashMap<i32, (String, f64)>,
    bench: f64,
}

/// Tern's backends now: pid and role.
async fn tern_backends(db: &PgPool) -> Vec<(i32, String)> {
    sqlx::query_as(
        "SELECT pid, substr(application_name, 6) FROM pg_stat_activity
         WHERE application_name LIKE 'tern-%' AND datname = current_database()",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default()
}

impl Meter {
    /// `roles` names `processes` in order.
    pub async fn start(db: &PgPool, roles: &[&'static str], processes: &[Child]) -> Meter {
        let backends = tern_backends(db)
            .await
            .into_iter()
            .map(|(pid, role)| (pid, (role, process_seconds(&pid.to_string(), false))))
            .collect();
        Meter {
            backends,
            machine: machine_busy_seconds(),
            processes: roles
                .iter()
                .zip(processes)
                .map(|(role, p)| (*role, p.id(), process_seconds(&p.id().to_string(), false)))
                .collect(),
            postgres: postgres_seconds(),
            bench: process_seconds("self", false),
        }
    }

    /// The whole machine's CPU per unit since the start, in ms.
    pub fn machine_ms(&self, units: usize) -> f64 {
        (machine_busy_seconds() - self.machine) * 1000.0 / units as f64
    }

    /// Each part's CPU per unit since the start, in µs, as one line.
    pub async fn parts(&self, db: &PgPool, units: usize) -> String {
        let per = |seconds: f64| seconds * 1e6 / units as f64;
        let mut parts: Vec<String> = self
            .processes
            .iter()
            .map(|(role, pid, before)| {
                format!(
                    "{role} {:.0} µs",
                    per(process_seconds(&pid.to_string(), false) - before)
                )
            })
            .collect();
        let postgres = postgres_seconds() - self.postgres;
        // Backends that came later count from zero; those that left are
        // in "other".
        let mut by_role: Vec<(String, f64)> = Vec::new();
        for (pid, role) in tern_backends(db).await {
            let before = self.backends.get(&pid).map_or(0.0, |(_, s)| *s);
            let used = process_seconds(&pid.to_string(), false) - before;
            match by_role.iter_mut().find(|(r, _)| *r == role) {
                Some((_, sum)) => *sum += used,
                None => by_role.push((role, used)),
            }
        }
        by_role.sort_by(|a, b| a.0.cmp(&b.0));
        let other = postgres - by_role.iter().map(|(_, s)| s).sum::<f64>();
        let split: Vec<String> = by_role
            .iter()
            .map(|(role, used)| format!("for {role} {:.0}", per(*used)))
            .chain(std::iter::once(format!("other {:.0}", per(other))))
            .collect();
        parts.push(format!(
            "PostgreSQL {:.0} µs ({})",
            per(postgres),
            split.join(", ")
        ));
        parts.push(format!(
            "bench clients and receivers {:.0} µs",
            per(process_seconds("self", false) - self.bench)
        ));
        parts.join(", ")
    }
}

/// Busy time of the whole machine (every state but idle and iowait).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    (ticks.iter().sum::<f64>() - idle) / 100.0
}

/// User and system CPU of `/proc/<pid>`, with its reaped children's if
/// `children`.
fn process_seconds(pid: &str, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime, stime, cutime, cstime are fields 14 to 17; CLK_TCK is 100.
    let own = ticks(11) + ticks(12);
    let reaped = if children { ticks(13) + ticks(14) } else { 0.0 };
    (own + reaped) / 100.0
}

/// Every `postgres` process's CPU, and what the exited ones used.
fn postgres_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| process_seconds(&pid, true))
        .sum()
}
