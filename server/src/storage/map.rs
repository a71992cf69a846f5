//! What the office map reads: visits in scope with a GPS location, and how many without one
//! per kelurahan. The SQL is the same on both backends; [`map_impl`] runs it for each.

use super::BoxFuture;
use super::activity::Scope;
use super::query::Sql;
use fieldsync_core::schema::DocKind;

/// A visit with its location.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MapPoint {
    pub document_id: String,
    pub nik: String,
    pub name: String,
    pub area: String,
    pub lat: f64,
    pub lon: f64,
    pub visited_at: i64,
}

pub trait MapReads {
    /// Visits in scope since `from` (epoch milliseconds) with a location, newest first, at
    /// most `limit`.
    fn visit_points<'a>(
        &'a self,
        scope: &'a Scope,
        from: i64,
        limit: i64,
    ) -> BoxFuture<'a, Vec<MapPoint>>;
    /// Visits in scope since `from` without a location: (kelurahan, count), by code.
    fn unlocated_visits<'a>(
        &'a self,
        scope: &'a Scope,
        from: i64,
    ) -> BoxFuture<'a, Vec<(String, i64)>>;
}

/// `FROM visits WHERE` the scope, the time and whether a location is known.
pub(super) fn visits_where(scope: &Scope, from: i64, located: bool) -> Sql {
    let mut sql = Sql::new(" FROM visits WHERE ");
    if !scope.reads(DocKind::Visit) {
        sql.push("1 = 0");
        return sql;
    }
    sql.in_scope("area", &scope.areas)
        .push(" AND visited_at >= ")
        .int(from)
        .push(if located {
            " AND lat IS NOT NULL AND lon IS NOT NULL"
        } else {
            " AND (lat IS NULL OR lon IS NULL)"
        });
    sql
}

/// Implements [`MapReads`] for a backend type with a `pool` field.
macro_rules! map_impl {
    ($storage:ty) => {
        impl $crate::storage::map::MapReads for $storage {
            fn visit_points<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
                from: i64,
                limit: i64,
            ) -> $crate::storage::BoxFuture<'a, Vec<$crate::storage::map::MapPoint>> {
                Box::pin(async move {
                    let mut sql = $crate::storage::query::Sql::new(
                        "SELECT document_id, nik, name, area, lat, lon, visited_at",
                    );
                    let rest = $crate::storage::map::visits_where(scope, from, true);
                    sql.text.push_str(&rest.text);
                    sql.args = rest.args;
                    sql.push(" ORDER BY visited_at DESC, document_id LIMIT ")
                        .int(limit);
                    Ok($crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn unlocated_visits<'a>(
                &'a self,
                scope: &'a $crate::storage::activity::Scope,
                from: i64,
            ) -> $crate::storage::BoxFuture<'a, Vec<(String, i64)>> {
                Box::pin(async move {
                    let mut sql = $crate::storage::query::Sql::new("SELECT area, COUNT(*)");
                    let rest = $crate::storage::map::visits_where(scope, from, false);
                    sql.text.push_str(&rest.text);
                    sql.args = rest.args;
                    sql.push(" GROUP BY area ORDER BY area");
                    Ok($crate::storage::query::bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text)),
                        &sql.args
                    )
                    .fetch_all(&self.pool)
                    .await?)
                })
            }
        }
    };
}

pub(super) use map_impl;
