//! One list split across machines (`--shard`, `--shard-by`): which share this
//! process fetches, given as `K/N` or taken from the job engine's own variables
//! (`--shard auto`), and which share an input belongs to: by host name, or by
//! registrable domain from the Public Suffix List (built in, no network).

use std::fmt;

/// One share of a list: `k` of `n`, 1-based, split by `by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub k: u64,
    pub n: u64,
    pub by: ShardBy,
}

/// What keeps inputs together in one share (`--shard-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ShardBy {
    /// The host name: all URLs of a host in one share.
    #[default]
    Host,
    /// The registrable domain (`a.example.co.uk` and `b.example.co.uk` together,
    /// `a.github.io` and `b.github.io` apart).
    Domain,
}

impl fmt::Display for ShardBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShardBy::Host => "host",
            ShardBy::Domain => "domain",
        })
    }
}

/// `--shard` as given: `K/N`, or `auto` / `auto/N` for the engine's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed { k: u64, n: u64 },
    Auto { n: Option<u64> },
}

/// The variables `--shard auto` reads, in the order it tries them.
pub(crate) const ENGINE_VARIABLES: &str = "JOB_COMPLETION_INDEX (Kubernetes Indexed Job, with --shard auto/N), \
SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT/_MIN/_STEP (Slurm job array), \
CLOUD_RUN_TASK_INDEX with CLOUD_RUN_TASK_COUNT (Cloud Run job), \
AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job, with --shard auto/N)";

/// `K/N` with 1 <= K <= N, `auto` or `auto/N`.
pub(crate) fn parse_shard(s: &str) -> Result<ShardArg, String> {
    let bad = || {
        format!("invalid shard '{s}': expected K/N with 1 <= K <= N (e.g. 2/8), auto, or auto/N")
    };
    let s = s.trim();
    let number = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
    match s.split_once('/') {
        None if s == "auto" => Ok(ShardArg::Auto { n: None }),
        None => Err(bad()),
        Some(("auto", n)) => match number(n)? {
            0 => Err(bad()),
            n => Ok(ShardArg::Auto { n: Some(n) }),
        },
        Some((k, n)) => {
            let (k, n) = (number(k)?, number(n)?);
            if k == 0 || k > n {
                return Err(bad());
            }
            Ok(ShardArg::Fixed { k, n })
        }
    }
}

impl ShardArg {
    /// The share this process fetches. `env` reads a variable (the process
    /// environment, or a test's).
    pub(crate) fn resolve(
        self,
        by: ShardBy,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, String> {
        let (index, n) = match self {
            ShardArg::Fixed { k, n } => (k - 1, n),
            ShardArg::Auto { n } => from_engine(n, &env)?,
        };
        Ok(Shard {
            k: index + 1,
            n,
            by,
        })
    }
}

/// (0-based index, count) from the first engine whose variables are set.
fn from_engine(
    given: Option<u64>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(u64, u64), String> {
    let var = |name: &str| -> Result<Option<u64>, String> {
        match env(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("--shard auto: {name}='{v}' is not a whole number")),
        }
    };
    let needs_count = |name: &str| {
        given.ok_or_else(|| {
            format!("--shard auto: {name} gives the index but not the count; write --shard auto/N")
        })
    };
    let (engine, index, count) = if let Some(i) = var("JOB_COMPLETION_INDEX")? {
        (
            "JOB_COMPLETION_INDEX",
            i,
            needs_count("JOB_COMPLETION_INDEX")?,
        )
    } else if let Some(id) = var("SLURM_ARRAY_TASK_ID")? {
        let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = var("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match var("SLURM_ARRAY_TASK_COUNT")? {
            Some(c) => c,
            None => needs_count("SLURM_ARRAY_TASK_ID")?,
        };
        let offset = id
            .checked_sub(min)
            .ok_or("--shard auto: SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?;
        slurm_range(id, min, step, count, var("SLURM_ARRAY_TASK_MAX")?)?;
        ("SLURM_ARRAY_TASK_ID", offset / step, count)
    } else if let Some(i) = var("CLOUD_RUN_TASK_INDEX")? {
        let count = match var("CLOUD_RUN_TASK_COUNT")? {
            Some(c) => c,
            None => needs_count("CLOUD_RUN_TASK_INDEX")?,
        };
        ("CLOUD_RUN_TASK_INDEX", i, count)
    } else if let Some(i) = var("AWS_BATCH_JOB_ARRAY_INDEX")? {
        (
            "AWS_BATCH_JOB_ARRAY_INDEX",
            i,
            needs_count("AWS_BATCH_JOB_ARRAY_INDEX")?,
        )
    } else {
        return Err(format!(
            "--shard auto: no job engine variable is set; it reads {ENGINE_VARIABLES}. Elsewhere give --shard K/N"
        ));
    };
    if let Some(n) = given
        && n != count
    {
        return Err(format!(
            "--shard auto/{n}: the engine says there are {count} tasks"
        ));
    }
    if count == 0 || index >= count {
        return Err(format!(
            "--shard auto: {engine} gives task {index} of {count} (0-based)"
        ));
    }
    Ok((index, count))
}

impl Shard {
    /// Whether an input with this key belongs to this share. The key's SHA-256
    /// decides, so the split never depends on the machine, the platform or the
    /// version of trawl.
    pub(crate) fn owns(&self, key: &str) -> bool {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        head % self.n == self.k - 1
    }
}

/// What keeps a host's inputs together: the host itself, or its registrable
/// domain. A host with none (an IP address, `localhost`, a bare public
/// suffix) is its own key.
pub(crate) fn key(host: &str, by: ShardBy) -> &str {
    let no_domain = host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.');
    match by {
        ShardBy::Domain if !no_domain => psl::domain_str(host).unwrap_or(host),
        _ => host,
    }
}

/// A Slurm task's position is `(ID - MIN) / STEP` only in a range array
/// (`--array=0-15`, `1-31:2`): there `MAX = MIN + (COUNT - 1) * STEP` and ID
/// is MIN plus a multiple of STEP. A list array (`--array=1,3,5,7`) gives
/// no task its position, so the share cannot be known: an error, never a guess.
fn slurm_range(id: u64, min: u64, step: u64, count: u64, max: Option<u64>) -> Result<(), String> {
    let fix = "submit a range (--array=0-3, or 1-7:2 with a step) or give each task --shard K/N";
    let last = count
        .checked_sub(1)
        .and_then(|c| c.checked_mul(step))
        .and_then(|span| span.checked_add(min));
    if let (Some(max), Some(last)) = (max, last)
        && max != last
    {
        return Err(format!(
            "--shard auto: the Slurm array is not a range: SLURM_ARRAY_TASK_MIN={min}, \
             _STEP={step} and _COUNT={count} end at {last}, but _MAX={max}. In a list \
             array (--array=1,3,5,7) Slurm gives no task its position, so its share \
             cannot be known: {fix}"
        ));
    }
    if !(id - min).is_multiple_of(step) {
        return Err(format!(
            "--shard auto: SLURM_ARRAY_TASK_ID={id} is not SLURM_ARRAY_TASK_MIN={min} plus \
             a multiple of _STEP={step}, as no range array gives: {fix}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(k: u64, n: u64) -> Shard {
        Shard {
            k,
            n,
            by: ShardBy::Host,
        }
    }

    #[test]
    fn shards_parse_and_partition_every_key() {
        assert_eq!(parse_shard("2/8"), Ok(ShardArg::Fixed { k: 2, n: 8 }));
        assert_eq!(parse_shard("auto"), Ok(ShardArg::Auto { n: None }));
        assert_eq!(parse_shard("auto/6"), Ok(ShardArg::Auto { n: Some(6) }));
        for bad in [
            "0/3",
            "4/3",
            "1/0",
            "3",
            "a/b",
            "-1/2",
            "auto/0",
            "auto/x",
            "automatic",
        ] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=5).map(|k| fixed(k, 5)).collect();
        let mut per_shard = [0; 5];
        for i in 0..1000 {
            let key = format!("host{i}.example");
            let owners: Vec<usize> = (0..5).filter(|&s| shards[s].owns(&key)).collect();
            assert_eq!(owners.len(), 1, "{key}");
            per_shard[owners[0]] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 150), "uneven: {per_shard:?}");
        // Stable across versions and machines: pinned.
        assert!(fixed(1, 1).owns("anything"));
        let pinned: Vec<u64> = ["example.com", "example.org", "a.test"]
            .iter()
            .map(|key| (1..=4).find(|&k| fixed(k, 4).owns(key)).unwrap())
            .collect();
        // Computed independently (Python hashlib): sha256(key)[..8] big-endian % 4 + 1.
        assert_eq!(pinned, [2, 3, 3]);
    }

    fn auto(n: Option<u64>, vars: &[(&str, &str)]) -> Result<(u64, u64), String> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        ShardArg::Auto { n }
            .resolve(ShardBy::Host, env)
            .map(|s| (s.k, s.n))
    }

    #[test]
    fn auto_reads_each_engine_and_says_what_is_missing() {
        assert_eq!(auto(Some(4), &[("JOB_COMPLETION_INDEX", "0")]), Ok((1, 4)));
        assert_eq!(auto(Some(4), &[("JOB_COMPLETION_INDEX", "3")]), Ok((4, 4)));
        assert!(
            auto(None, &[("JOB_COMPLETION_INDEX", "0")])
                .unwrap_err()
                .contains("auto/N")
        );
        assert!(
            auto(Some(4), &[("JOB_COMPLETION_INDEX", "4")]).is_err(),
            "0-based"
        );
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(auto(None, &slurm), Ok((3, 4)));
        assert!(auto(Some(5), &slurm).unwrap_err().contains("4 tasks"));
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "5"),
        ];
        assert_eq!(auto(None, &stepped), Ok((4, 5)));
        // Issue 28 item 3: a list array (--array=1,3,5,7 gives MIN=1, MAX=7,
        // COUNT=4 and no step) was task 4 of 4 on ID 5, and 2/4 on ID 3.
        for id in ["1", "3", "5", "7"] {
            let list = [
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "7"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ];
            let e = auto(None, &list).unwrap_err();
            assert!(e.contains("list array") && e.contains("--shard K/N"), "{e}");
        }
        // The same tasks as the range 1-7:2 are fine.
        let range = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(auto(None, &range), Ok((3, 4)));
        // A step that no range gives to this ID: an error, not a silent 2/4.
        let synthetic = [
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        let e = auto(None, &synthetic).unwrap_err();
        assert!(e.contains("multiple of _STEP=2"), "{e}");
        // A throttled range (--array=0-15%4) reads as the range: the throttle
        // is in no variable.
        let throttled = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "15"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "16"),
        ];
        assert_eq!(auto(None, &throttled), Ok((6, 16)));
        // One task alone (--array=3): a range of one.
        let alone = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
        ];
        assert_eq!(auto(None, &alone), Ok((1, 1)));
        let cloud_run = [("CLOUD_RUN_TASK_INDEX", "2"), ("CLOUD_RUN_TASK_COUNT", "3")];
        assert_eq!(auto(None, &cloud_run), Ok((3, 3)));
        assert_eq!(
            auto(Some(10), &[("AWS_BATCH_JOB_ARRAY_INDEX", "9")]),
            Ok((10, 10))
        );
        let none = auto(Some(3), &[]).unwrap_err();
        for name in [
            "JOB_COMPLETION_INDEX",
            "SLURM_ARRAY_TASK_ID",
            "CLOUD_RUN_TASK_INDEX",
            "AWS_BATCH_JOB_ARRAY_INDEX",
        ] {
            assert!(none.contains(name), "{none}");
        }
        assert!(auto(Some(3), &[("JOB_COMPLETION_INDEX", "x")]).is_err());
    }

    #[test]
    fn domains_keep_subdomains_together_where_the_suffix_list_says() {
        let by = ShardBy::Domain;
        assert_eq!(key("a.example.co.uk", by), "example.co.uk");
        assert_eq!(key("b.c.example.co.uk", by), "example.co.uk");
        assert_eq!(key("www.example.com", by), "example.com");
        // github.io is a public suffix (the list's private section): each of
        // its subdomains is a site of its own.
        assert_eq!(key("a.github.io", by), "a.github.io");
        assert_ne!(key("a.github.io", by), key("b.github.io", by));
        assert_eq!(key("x.a.github.io", by), "a.github.io");
        assert_eq!(
            key("deep.sub.example.pvt.k12.ma.us", by),
            "example.pvt.k12.ma.us"
        );
        assert_eq!(
            key("x.city.kawasaki.jp", by),
            "city.kawasaki.jp",
            "an exception rule"
        );
        assert_eq!(key("127.0.0.1", by), "127.0.0.1");
        assert_eq!(key("localhost", by), "localhost");
        assert_eq!(key("[::1]", by), "[::1]");
        assert_eq!(key("a.example.co.uk", ShardBy::Host), "a.example.co.uk");
    }
}
