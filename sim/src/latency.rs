//! One-way link latencies between simulated regions.
//!
//! A [`LatencyMatrix`] is an `n × n` table of one-way delays in milliseconds (`[from][to]`),
//! zero on the diagonal, indexed by region position (position 0 is `RegionId(1)`). It comes from the
//! `[latency_ms]` table of `regions.toml` when that file has one, else from built-in defaults
//! (40 / 70 / 110 ms between the first three regions, growing with distance beyond).
//!
//! [`crate::SimConfig::apply_regions_toml`] validates the file with the node's own parser first;
//! this reader then takes only the latency table, and also accepts files the node would not
//! (tests build matrices from fragments). Accepted shapes:
//!
//! ```toml
//! [[regions]]            # or [[region]]; or [regions.NAME] tables; `id` orders them if present
//! name = "us-east"
//! id = 1
//!
//! [latency_ms]
//! us-east.eu-west = 40    # dotted key: a nested table
//! "eu-west.ap-south" = 70 # quoted key with a dot: a flat entry
//! [latency_ms.ap-south]
//! us-east = 110           # or an explicit sub-table
//! ```
//!
//! `"a.b"` is the one-way delay from `a` to `b`; `b → a` gets the same value unless the file
//! gives it too.
//!
//! Region names are matched to positions in the order of the region list (by `id` when given),
//! or, if the file lists no regions, in the alphabetical order of the names in the table. Pairs
//! the file does not mention keep their default.

use std::collections::BTreeMap;
use std::path::Path;

/// One-way delays in milliseconds between region positions (`[from][to]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyMatrix {
    ms: Vec<Vec<u64>>,
    /// Where the numbers came from, for the summary ("built-in" or a file name).
    pub source: String,
}

impl LatencyMatrix {
    /// The built-in defaults for `n` regions: 40, 70 and 110 ms between the first three (a
    /// US/EU/Asia triangle); further regions sit 40 ms beyond each other on a line.
    pub fn builtin(n: usize) -> LatencyMatrix {
        let mut ms = vec![vec![0; n]; n];
        for (i, row) in ms.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = default_pair(i, j);
            }
        }
        LatencyMatrix {
            ms,
            source: "built-in".into(),
        }
    }

    /// The defaults for `n` regions overridden by the `[latency_ms]` table of the TOML file at
    /// `path`, if the file exists and has one. Unreadable or unparsable files are ignored (the
    /// result says so in `source`).
    pub fn from_regions_toml(path: &Path, n: usize) -> LatencyMatrix {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut m = LatencyMatrix::from_toml_str(&text, n);
                if m.source != "built-in" {
                    m.source = format!("{} [latency_ms]", path.display());
                }
                m
            }
            Err(_) => LatencyMatrix::builtin(n),
        }
    }

    /// Like [`LatencyMatrix::from_regions_toml`], from the file's text.
    pub fn from_toml_str(text: &str, n: usize) -> LatencyMatrix {
        let mut m = LatencyMatrix::builtin(n);
        let Ok(doc) = text.parse::<toml::Table>() else {
            m.source = "built-in (regions.toml did not parse)".into();
            return m;
        };
        let Some(toml::Value::Table(lat)) = doc.get("latency_ms") else {
            return m;
        };
        let mut pairs: Vec<(String, String, u64)> = Vec::new();
        for (a, v) in lat {
            match v {
                toml::Value::Table(inner) => {
                    for (b, d) in inner {
                        if let Some(d) = as_ms(d) {
                            pairs.push((a.clone(), b.clone(), d));
                        }
                    }
                }
                other => {
                    if let (Some((x, y)), Some(d)) = (a.split_once('.'), as_ms(other)) {
                        pairs.push((x.to_string(), y.to_string(), d));
                    }
                }
            }
        }
        if pairs.is_empty() {
            return m;
        }
        let mut names = region_names(&doc);
        if names.is_empty() {
            let mut all: Vec<String> = pairs
                .iter()
                .flat_map(|(a, b, _)| [a.clone(), b.clone()])
                .collect();
            all.sort();
            all.dedup();
            names = all;
        }
        let pos: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let mut applied = 0;
        let mut explicit = std::collections::BTreeSet::new();
        for (a, b, d) in &pairs {
            if let (Some(&i), Some(&j)) = (pos.get(a.as_str()), pos.get(b.as_str())) {
                if i < n && j < n && i != j {
                    m.ms[i][j] = *d;
                    explicit.insert((i, j));
                    // The reverse direction defaults to the same delay unless it is given too.
                    if !explicit.contains(&(j, i)) {
                        m.ms[j][i] = *d;
                    }
                    applied += 1;
                }
            }
        }
        if applied > 0 {
            m.source = "regions.toml [latency_ms]".into();
        }
        m
    }

    /// An explicit matrix (tests). Panics unless it is square.
    pub fn from_rows(rows: Vec<Vec<u64>>) -> LatencyMatrix {
        assert!(
            rows.iter().all(|r| r.len() == rows.len()),
            "matrix must be square"
        );
        LatencyMatrix {
            ms: rows,
            source: "explicit".into(),
        }
    }

    /// Number of regions the matrix covers.
    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// True when the matrix covers no region.
    pub fn is_empty(&self) -> bool {
        self.ms.is_empty()
    }

    /// One-way delay from position `from` to position `to`; defaults for positions outside.
    pub fn one_way(&self, from: usize, to: usize) -> u64 {
        self.ms
            .get(from)
            .and_then(|r| r.get(to))
            .copied()
            .unwrap_or_else(|| default_pair(from, to))
    }

    /// The matrix resized to `n` regions (cells beyond the old size get defaults).
    pub fn resized(&self, n: usize) -> LatencyMatrix {
        let ms = (0..n)
            .map(|i| (0..n).map(|j| self.one_way(i, j)).collect())
            .collect();
        LatencyMatrix {
            ms,
            source: self.source.clone(),
        }
    }

    /// The rows, for printing.
    pub fn rows(&self) -> &[Vec<u64>] {
        &self.ms
    }
}

fn default_pair(i: usize, j: usize) -> u64 {
    if i == j {
        return 0;
    }
    let (a, b) = (i.min(j), i.max(j));
    match (a, b) {
        (0, 1) => 40,
        (1, 2) => 70,
        (0, 2) => 110,
        _ => 40 * (b - a) as u64 + 30,
    }
}

fn as_ms(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Some(*i as u64),
        toml::Value::Float(f) if *f >= 0.0 => Some(f.round() as u64),
        _ => None,
    }
}

/// Region names in cluster order, from whichever region list shape the file uses.
fn region_names(doc: &toml::Table) -> Vec<String> {
    let mut found: Vec<(Option<i64>, usize, String)> = Vec::new();
    for key in ["regions", "region"] {
        match doc.get(key) {
            Some(toml::Value::Array(items)) => {
                for (k, item) in items.iter().enumerate() {
                    if let Some(t) = item.as_table() {
                        if let Some(name) = t.get("name").and_then(|v| v.as_str()) {
                            let id = t.get("id").and_then(|v| v.as_integer());
                            found.push((id, k, name.to_string()));
                        }
                    }
                }
            }
            Some(toml::Value::Table(t)) => {
                for (k, (name, v)) in t.iter().enumerate() {
                    let id = v
                        .as_table()
                        .and_then(|t| t.get("id"))
                        .and_then(|v| v.as_integer());
                    let name = v
                        .as_table()
                        .and_then(|t| t.get("name"))
                        .and_then(|v| v.as_str())
                        .unwrap_or(name);
                    found.push((id, k, name.to_string()));
                }
            }
            _ => {}
        }
        if !found.is_empty() {
            break;
        }
    }
    // Ids first (when present), then listing order.
    found.sort_by_key(|(id, k, _)| (id.unwrap_or(i64::MAX), *k));
    found.into_iter().map(|(_, _, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_triangle() {
        let m = LatencyMatrix::builtin(3);
        assert_eq!(
            m.rows(),
            &[vec![0, 40, 110], vec![40, 0, 70], vec![110, 70, 0]]
        );
    }

    #[test]
    fn dotted_keys_with_region_list() {
        let text = r#"
            [[regions]]
            name = "us-east"
            id = 1
            [[regions]]
            name = "eu-west"
            id = 2
            [[regions]]
            name = "ap-south"
            id = 3
            [latency_ms]
            us-east.eu-west = 35
            "eu-west.ap-south" = 60
            "ap-south.eu-west" = 65
            [latency_ms.ap-south]
            us-east = 120
        "#;
        let m = LatencyMatrix::from_toml_str(text, 3);
        assert_eq!(
            m.rows(),
            &[vec![0, 35, 120], vec![35, 0, 60], vec![120, 65, 0]]
        );
    }

    #[test]
    fn tolerant_of_missing_and_broken() {
        assert_eq!(
            LatencyMatrix::from_toml_str("", 3).rows(),
            LatencyMatrix::builtin(3).rows()
        );
        assert_eq!(
            LatencyMatrix::from_toml_str("this is [ not toml", 3).rows(),
            LatencyMatrix::builtin(3).rows()
        );
        let m = LatencyMatrix::from_toml_str("[latency_ms]\na.b = 5\nunknown = 'x'\n", 4);
        assert_eq!(m.one_way(0, 1), 5);
        assert_eq!(m.one_way(1, 0), 5);
        assert_eq!(m.one_way(2, 3), 70);
    }
}
