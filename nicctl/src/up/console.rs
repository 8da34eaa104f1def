//! What `nicctl up` prints while it builds: one `up: ...` line per step on stderr, and a
//! progress bar per host whose plan has more than [`BAR_MIN_COMMANDS`] commands (drawn only
//! when stderr is a terminal, like `nicctl apply`'s), replaced by a line when the host is
//! done.
use super::deployment::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Plans longer than this get a progress bar.
pub const BAR_MIN_COMMANDS: usize = 1000;

/// Prints a deployment's progress.
pub struct UpConsole {
    target: fn() -> ProgressDrawTarget,
    bar: Option<(String, ProgressBar)>,
    /// The hosts that got a bar, in order.
    barred: Vec<String>,
}

impl Default for UpConsole {
    fn default() -> Self {
        UpConsole::new(ProgressDrawTarget::stderr)
    }
}

impl UpConsole {
    /// Draws bars on `target` (stderr for `nicctl up`).
    pub fn new(target: fn() -> ProgressDrawTarget) -> UpConsole {
        UpConsole {
            target,
            bar: None,
            barred: Vec::new(),
        }
    }

    /// The hosts that got a progress bar so far.
    pub fn barred(&self) -> &[String] {
        &self.barred
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some((_, b)) => b.suspend(|| eprintln!("up: {text}")),
            None => eprintln!("up: {text}"),
        }
    }

    /// Shows one progress event.
    pub fn show(&mut self, p: Progress<'_>) {
        match p {
            Progress::Step(s) => self.line(s),
            Progress::Reaped(r) => {
                let what = match r.namespaces.len() {
                    0 => "nothing was left".to_string(),
                    1 => format!("namespace {}", r.namespaces[0]),
                    _ => format!("namespaces {}", r.namespaces.join(", ")),
                };
                let who = if r.pid == 0 {
                    format!("an earlier {}", r.file)
                } else {
                    format!("a killed `nicctl up` (pid {}, {})", r.pid, r.file)
                };
                self.line(&format!("removed what {who} left behind: {what}"));
            }
            Progress::Programming { host, done, total } => {
                if total <= BAR_MIN_COMMANDS {
                    return;
                }
                if self.bar.as_ref().is_none_or(|(h, _)| h != host) {
                    if let Some((_, b)) = self.bar.take() {
                        b.finish_and_clear();
                    }
                    let bar = ProgressBar::with_draw_target(Some(total as u64), (self.target)());
                    if let Ok(style) = ProgressStyle::with_template(
                        "up: host {prefix}: {bar:40} {pos}/{len} commands ({eta} left)",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_prefix(host.to_string());
                    self.barred.push(host.to_string());
                    self.bar = Some((host.to_string(), bar));
                }
                if let Some((_, b)) = &self.bar {
                    b.set_position(done as u64);
                }
                if done == total {
                    if let Some((_, b)) = self.bar.take() {
                        b.finish_and_clear();
                    }
                    self.line(&format!("host {host}: {total} commands programmed"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_with_long_plans_get_a_bar() {
        let mut c = UpConsole::new(ProgressDrawTarget::hidden);
        for (host, total) in [("h1", 1210), ("h2", 31), ("h3", 1001)] {
            for done in 1..=total {
                c.show(Progress::Programming { host, done, total });
            }
        }
        assert_eq!(c.barred(), ["h1", "h3"]);
        assert!(c.bar.is_none(), "every bar is finished");
    }
}
