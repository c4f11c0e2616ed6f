//! The printed report: a closed-loop table, berth/moto ratios, the
//! open-loop latencies, and the first error body of any run that had one.

use crate::load::RunResult;

pub struct Row {
    pub workload: &'static str,
    pub target: String,
    pub mode: Mode,
    pub result: RunResult,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: u32, connections: usize },
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    pub fn add(&mut self, workload: &'static str, target: &str, mode: Mode, result: RunResult) {
        let row = Row {
            workload,
            target: target.to_owned(),
            mode,
            result,
        };
        eprintln!("  {}", one_line(&row));
        self.rows.push(row);
    }

    pub fn print(&self) {
        println!();
        println!("closed loop (keep-alive HTTP/1.1 connections, each request signed):");
        println!(
            "{:<24}{:<10}{:>5}{:>11}{:>9}{:>9}{:>9}{:>8}{:>12}{:>12}{:>13}",
            "workload",
            "target",
            "conc",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "srv us/req",
            "cli us/req",
            "other cores"
        );
        for row in &self.rows {
            if let Mode::Closed { concurrency } = row.mode {
                let r = &row.result;
                println!(
                    "{:<24}{:<10}{:>5}{:>11.1}{:>9.2}{:>9.2}{:>9.2}{:>8}{:>12}{:>12}{:>13}",
                    row.workload,
                    row.target,
                    concurrency,
                    r.rate(),
                    r.ms(0.5),
                    r.ms(0.99),
                    r.max_ms(),
                    r.errors,
                    cpu_cell(r.cpu_us_per_request(r.cpu.server)),
                    cpu_cell(r.cpu_us_per_request(r.cpu.client)),
                    r.cpu.other_cores.map_or("-".into(), |c| format!("{c:.2}")),
                );
            }
        }
        println!(
            "(srv/cli us/req: CPU time of the server / of this client per request, warm-up \
             included; other cores: CPU taken by other processes during the run, of {})",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        for line in self.ratios() {
            println!("{line}");
        }
        println!();
        println!("open loop (fixed rate; latency from the scheduled send time):");
        for row in &self.rows {
            if let Mode::Open { .. } = row.mode {
                println!("{}", one_line(row));
            }
        }
        let errors: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.result.first_error.is_some())
            .collect();
        if !errors.is_empty() {
            println!();
            println!("first error of each run that had errors:");
            for row in errors {
                let e = row.result.first_error.as_deref().unwrap_or_default();
                println!("  {} {}: {}", row.workload, row.target, truncate(e, 400));
            }
        }
    }

    /// berth (or the external endpoint) over moto, at each concurrency both ran.
    fn ratios(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for a in &self.rows {
            let Mode::Closed { concurrency } = a.mode else {
                continue;
            };
            if a.target == "moto" {
                continue;
            }
            let moto = self
                .rows
                .iter()
                .find(|b| b.target == "moto" && b.workload == a.workload && b.mode == a.mode);
            if let Some(b) = moto {
                let ratio = a.result.rate() / b.result.rate().max(1e-9);
                lines.push(format!(
                    "ratio {}/moto ({}, conc {concurrency}): {ratio:.1}x",
                    a.target, a.workload
                ));
            }
        }
        if !lines.is_empty() {
            lines.insert(0, String::new());
        }
        lines
    }
}

fn one_line(row: &Row) -> String {
    let r = &row.result;
    let mut s = match row.mode {
        Mode::Closed { concurrency } => format!(
            "{} {} conc {concurrency}: {:.1} req/s",
            row.workload,
            row.target,
            r.rate()
        ),
        Mode::Open { rate, connections } => format!(
            "{} @{rate}/s {} ({connections} conns): achieved {:.1} req/s",
            row.workload,
            row.target,
            r.rate()
        ),
    };
    s += &format!(
        ", p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, {} ok, {} errors",
        r.ms(0.5),
        r.ms(0.99),
        r.ms(0.999),
        r.max_ms(),
        r.ok,
        r.errors
    );
    if let Mode::Open { .. } = row.mode {
        s += &format!(
            "; send lag p99 {:.2} ms",
            r.send_lag.value_at_quantile(0.99) as f64 / 1000.0
        );
    }
    if let Some(us) = r.cpu_us_per_request(r.cpu.server) {
        s += &format!("; server CPU {us:.0} us/req");
    }
    if let Some(c) = r.cpu.other_cores {
        s += &format!("; other processes {c:.2} cores");
    }
    if r.dropped > 0 {
        s += &format!(", {} never sent (fell too far behind)", r.dropped);
    }
    if r.reconnects > 0 {
        s += &format!(", {} reconnects", r.reconnects);
    }
    s
}

fn cpu_cell(us: Option<f64>) -> String {
    us.map_or_else(|| "-".to_owned(), |us| format!("{us:.0}"))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}
