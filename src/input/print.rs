//! Fingerprints of a list, taken while it is read (streaming, nothing kept):
//! - the whole list's, for the share file, so `trawl merge` refuses parts made
//!   from different lists;
//! - the resumed part's: over the lines whose index already has a record, so
//!   `--resume` can prove that those records are of this list's lines.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::job::without_passwords;
use crate::values::IndexSet;

/// What one `(index, input)` pair adds to a [`Done`] sum. The input is as a
/// record shows it (passwords removed), so a record and its line agree.
fn entry(index: u64, shown: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(index.to_le_bytes());
    h.update(shown.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// An order-free fingerprint of a set of `(index, input)` pairs: the sum of
/// their [`entry`] values and how many there are. The records an output holds
/// (in any order) and the list's lines at the same indexes give the same one,
/// unless a line changed, went missing or moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Done {
    pub sum: u64,
    pub count: u64,
}

impl Done {
    pub(crate) fn add(&mut self, index: u64, shown: &str) {
        self.sum = self.sum.wrapping_add(entry(index, shown));
        self.count += 1;
    }
}

/// Taken line by line by the reader.
pub(crate) struct ListPrint {
    whole: Sha256,
    /// Indexes with a record already (`--resume`), and their lines' sum so far.
    done: Option<(Arc<IndexSet>, Done)>,
}

/// What [`ListPrint`] found over a list read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Printed {
    /// `sha256:` and the hex digest of every non-skipped line's input, each
    /// followed by a newline, in order.
    pub list: String,
    /// Over the lines whose index was in the resumed set.
    pub done: Option<Done>,
}

impl ListPrint {
    pub(crate) fn new(done: Option<Arc<IndexSet>>) -> ListPrint {
        ListPrint {
            whole: Sha256::new(),
            done: done.map(|d| (d, Done::default())),
        }
    }

    pub(crate) fn line(&mut self, index: u64, input: &str) {
        self.whole.update(input.as_bytes());
        self.whole.update(b"\n");
        if let Some((set, sum)) = &mut self.done
            && set.contains(index)
        {
            sum.add(index, &without_passwords(input.to_owned()));
        }
    }

    pub(crate) fn finish(self) -> Printed {
        Printed {
            list: format!("sha256:{}", hex::encode(self.whole.finalize())),
            done: self.done.map(|(_, sum)| sum),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(lines: &[&str], done: &[u64]) -> Printed {
        let mut set = IndexSet::default();
        done.iter().for_each(|&i| {
            set.insert(i);
        });
        let mut p = ListPrint::new(Some(Arc::new(set)));
        for (i, l) in lines.iter().enumerate() {
            p.line(i as u64, l);
        }
        p.finish()
    }

    #[test]
    fn the_done_sum_is_of_the_records_in_any_order_and_sees_any_change() {
        let list = ["http://a.test/1", "http://u:pw@a.test/2", "http://a.test/3"];
        let mut records = Done::default();
        // The records, as written (passwords removed), out of order.
        records.add(2, "http://a.test/3");
        records.add(1, "http://u@a.test/2");
        assert_eq!(print(&list, &[1, 2]).done, Some(records));
        let changed = ["http://a.test/1", "http://u:pw@a.test/2", "http://a.test/4"];
        assert_ne!(print(&changed, &[1, 2]).done, Some(records));
        // A line moved to another index.
        let moved = ["http://a.test/1", "http://a.test/3", "http://u:pw@a.test/2"];
        assert_ne!(print(&moved, &[1, 2]).done, Some(records));
        // The list is shorter than the records say.
        assert_ne!(print(&list[..2], &[1, 2]).done, Some(records));
    }

    #[test]
    fn the_whole_print_is_of_every_line_in_order() {
        let a = print(&["x", "y"], &[]).list;
        assert_eq!(a, print(&["x", "y"], &[0]).list);
        assert_ne!(a, print(&["y", "x"], &[]).list);
        assert_ne!(a, print(&["xy"], &[]).list);
        assert_eq!(
            a,
            format!("sha256:{}", hex::encode(Sha256::digest(b"x\ny\n")))
        );
    }
}
