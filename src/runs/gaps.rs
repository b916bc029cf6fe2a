//! Index ranges that a merge found missing, counted, the first few kept for
//! its message.

/// Index ranges named in the message, at most.
const RANGES_SHOWN: usize = 10;

/// Index ranges, counted, the first few kept for the message.
#[derive(Default)]
pub(super) struct Gaps {
    pub(super) count: u64,
    ranges: Vec<(u64, u64)>,
    more: u64,
}

impl Gaps {
    pub(super) fn add(&mut self, from: u64, to: u64) {
        self.count += to - from + 1;
        let shown = self.ranges.len();
        match self.ranges.last_mut() {
            Some(last) if last.1 + 1 == from => last.1 = to,
            _ if shown < RANGES_SHOWN => self.ranges.push((from, to)),
            _ => self.more += 1,
        }
    }
}

impl std::fmt::Display for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self
            .ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        write!(f, "{}", shown.join(", "))?;
        if self.more > 0 {
            write!(f, " and {} more ranges", self.more)?;
        }
        Ok(())
    }
}
