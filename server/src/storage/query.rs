//! Building the read queries of the web with filters, the same SQL on both backends.
//!
//! Values never enter the SQL text: [`Sql`] numbers a `$n` placeholder for each and keeps the
//! value, and [`bind_args!`] binds them in order to a backend's query.

use fieldsync_core::schema::RegionCode;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text with numbered placeholders and their values.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (constants only, never input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for a text value.
    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.args.push(Arg::Text(value.into()));
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// Appends a placeholder for a number.
    pub fn int(&mut self, value: i64) -> &mut Self {
        self.args.push(Arg::Int(value));
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// Appends a condition that `column` (a region code) lies in one of `areas`: equal to a
    /// scope or below it. No areas: a condition no row meets.
    ///
    /// No index on `column` serves this `LIKE` (it ignores case), which is what pages read in
    /// another index's order want: the feed walks `received_at`, the review queue its own
    /// order, and each stops after a page. A read of every row in scope wants
    /// [`Self::in_scope_indexed`].
    pub fn in_scope(&mut self, column: &str, areas: &[RegionCode]) -> &mut Self {
        self.scope_with(column, areas, |sql, area| {
            sql.push(" OR ").push(column).push(" LIKE ");
            sql.text(format!("{area}.%"));
        })
    }

    /// [`Self::in_scope`] in a form an index on `column` serves: "below `a`" as the range from
    /// `a.` up to `a/` ('/' follows '.'), in byte order exactly the codes that begin with `a.`.
    /// For reading every row in scope: a caseload's reconcile scanned the whole table through
    /// the `LIKE`, at every phone's first connection to a server process. Byte order is
    /// SQLite's default collation, and the area columns' ("C") on PostgreSQL (migration 12).
    pub fn in_scope_indexed(&mut self, column: &str, areas: &[RegionCode]) -> &mut Self {
        self.scope_with(column, areas, |sql, area| {
            sql.push(" OR (").push(column).push(" >= ");
            sql.text(format!("{area}."));
            sql.push(" AND ").push(column).push(" < ");
            sql.text(format!("{area}/")).push(")");
        })
    }

    /// `(column = a OR <below a> OR column = b OR <below b> …)`; `1 = 0` for no areas.
    fn scope_with(
        &mut self,
        column: &str,
        areas: &[RegionCode],
        below: impl Fn(&mut Self, &str),
    ) -> &mut Self {
        if areas.is_empty() {
            return self.push("1 = 0");
        }
        self.push("(");
        for (i, area) in areas.iter().enumerate() {
            if i > 0 {
                self.push(" OR ");
            }
            self.push(column).push(" = ").text(area.as_str());
            below(self, area.as_str());
        }
        self.push(")")
    }
}

/// `($1, $2), ($3, $4), …`: the placeholders of a multi-row `VALUES` list, `rows` rows of
/// `columns` values each.
pub fn values_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(?, ?), (?, ?), …`: the same with SQLite's anonymous placeholders. For every numbered
/// placeholder, SQLite searches the statement's list of named ones, when preparing it and
/// again when sqlx binds each value: a statement of 2,000 values spent more time there than
/// in storing its rows.
pub fn anonymous_rows(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// The most rows one multi-row statement takes: 22 columns × 100 is far below either
/// backend's bound on values.
const MAX_ROWS: usize = 100;

/// The row counts of multi-row statements. A statement's text depends on its number of rows,
/// and preparing a new text for every count cost more than the round trips it saved; rows go
/// in parts of these few sizes instead, each text prepared once per connection and kept in
/// sqlx's statement cache (a run of 128 documents takes five statements of a kind).
const PART_SIZES: [usize; 4] = [MAX_ROWS, 25, 5, 1];

/// `rows` in parts of the sizes of [`PART_SIZES`], largest first.
pub fn parts<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = PART_SIZES.iter().copied().find(|s| *s <= rows.len())?;
        let (part, rest) = rows.split_at(size);
        rows = rest;
        Some(part)
    })
}

/// `keys` as the value lists of `IN (…)` statements: at most [`MAX_ROWS`] keys each, padded
/// with copies of their last key to the next of [`PART_SIZES`]. A repeated value changes
/// nothing in an `IN` list, and so a list of any length up to 100 is one statement of one of
/// four texts, where [`parts`] would split 99 keys into 11.
pub fn padded_lists<T>(keys: &[T]) -> impl Iterator<Item = (&[T], usize)> {
    keys.chunks(MAX_ROWS).map(|list| {
        let size = PART_SIZES
            .iter()
            .rev()
            .copied()
            .find(|s| *s >= list.len())
            .unwrap_or(MAX_ROWS);
        (list, size)
    })
}

/// Binds an [`Sql`]'s values, in order, to a `sqlx::query`/`query_as` of either backend.
#[allow(unused_macros)]
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                $crate::storage::query::Arg::Text(s) => q.bind(s.clone()),
                $crate::storage::query::Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

#[allow(unused_imports)]
pub(crate) use bind_args;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_and_placeholders() {
        let mut sql = Sql::new("SELECT * FROM visits WHERE ");
        sql.in_scope("area", &[RegionCode::parse_prefix("32.77.01").unwrap()])
            .push(" AND visited_at >= ")
            .int(5);
        assert_eq!(
            sql.text,
            "SELECT * FROM visits WHERE (area = $1 OR area LIKE $2) AND visited_at >= $3"
        );
        assert_eq!(
            sql.args,
            vec![
                Arg::Text("32.77.01".into()),
                Arg::Text("32.77.01.%".into()),
                Arg::Int(5)
            ]
        );
        assert_eq!(values_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(anonymous_rows(2, 3), "(?, ?, ?), (?, ?, ?)");
        let mut none = Sql::default();
        none.in_scope("area", &[]);
        assert_eq!(none.text, "1 = 0");
        let mut none = Sql::default();
        none.in_scope_indexed("area", &[]);
        assert_eq!(none.text, "1 = 0");
    }

    #[test]
    fn rows_go_in_parts_of_a_few_sizes_largest_first() {
        let rows: Vec<u32> = (0..233).collect();
        let sizes: Vec<usize> = parts(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [100, 100, 25, 5, 1, 1, 1]);
        let again: Vec<u32> = parts(&rows).flatten().copied().collect();
        assert_eq!(again, rows, "every row once, in order");
        assert_eq!(parts::<u32>(&[]).count(), 0);
    }

    #[test]
    fn in_lists_are_padded_to_a_few_sizes() {
        let keys: Vec<u32> = (0..233).collect();
        let lists: Vec<(usize, usize)> = padded_lists(&keys).map(|(l, n)| (l.len(), n)).collect();
        assert_eq!(lists, [(100, 100), (100, 100), (33, 100)]);
        let again: Vec<u32> = padded_lists(&keys).flat_map(|(l, _)| l).copied().collect();
        assert_eq!(again, keys, "every key once, in order");
        let sizes = |n: u32| -> Vec<usize> {
            let keys: Vec<u32> = (0..n).collect();
            padded_lists(&keys).map(|(_, size)| size).collect()
        };
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(2), [5]);
        assert_eq!(sizes(5), [5]);
        assert_eq!(sizes(24), [25]);
        assert_eq!(sizes(26), [100]);
        assert_eq!(padded_lists::<u32>(&[]).count(), 0);
    }

    #[test]
    fn an_indexed_scope_is_a_byte_range_per_area() {
        let mut sql = Sql::new("WHERE ");
        let areas = ["32.77", "32.01.02.1001"].map(|a| RegionCode::parse_prefix(a).unwrap());
        sql.in_scope_indexed("area", &areas);
        assert_eq!(
            sql.text,
            "WHERE (area = $1 OR (area >= $2 AND area < $3) OR area = $4 \
             OR (area >= $5 AND area < $6))"
        );
        let text = |s: &str| Arg::Text(s.into());
        assert_eq!(
            sql.args,
            vec![
                text("32.77"),
                text("32.77."),
                text("32.77/"),
                text("32.01.02.1001"),
                text("32.01.02.1001."),
                text("32.01.02.1001/"),
            ]
        );
    }
}
