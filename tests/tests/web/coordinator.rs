//! The coordinator's views, end to end: phones of two field workers in different kecamatan
//! write visits, referrals and outreach; coordinators, a supervisor, a field worker and an
//! administrator read the merged feed, a beneficiary's timeline, the summaries and the live
//! stream, each within their own areas and role.

#[path = "coordinator/feed.rs"]
mod feed;
#[path = "coordinator/field.rs"]
mod field;
#[path = "coordinator/map.rs"]
mod map;
#[path = "coordinator/search.rs"]
mod search;
#[path = "coordinator/views.rs"]
mod views;
