//! What the command line changes in a plan: which suites, how long, how many users, which
//! part of the load (`--shard K/N`). Plain data, read by the compiler and by `scale.rs`.

/// Part `index` (from 1) of `count` of a plan's load: `--shard K/N`, one of N machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// This shard's part of `n` things split as evenly as possible, remainders to the lowest
    /// shards: the parts of all shards add up to `n`.
    pub fn share(self, n: u32) -> u32 {
        n / self.count + u32::from(self.index - 1 < n % self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N` with 1 ≤ K ≤ N.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard: expected K/N with 1 ≤ K ≤ N, like 2/3");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What the command line changes in a plan.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Suites to run (names, kinds such as `chaos`, or `all`); empty means the plan's
    /// `default_suites` (or all of them).
    pub suites: Vec<String>,
    /// Shrink every suite to at most 30 s.
    pub quick: bool,
    /// Keep only requests with at least one of these tags (empty: all).
    pub tags: Vec<String>,
    /// Stretch or shrink every selected suite to this length (nightly runs by hand).
    pub duration: Option<std::time::Duration>,
    /// Scale the virtual users of closed-model scenarios so that their peak is this.
    pub users: Option<u32>,
    /// Send only this part of the load (`--shard K/N`); not part of a suite's identity, so
    /// every shard's summary, and their merge, compare with a whole run's baseline.
    pub shard: Option<Shard>,
}
