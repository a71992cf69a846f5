//! What a peer's changes did, judged on the Automerge document that holds them.
//!
//! [`check_change`] compares typed states, which cannot show two things:
//!
//! - **Where a new event went.** A referral's history only grows at the end *as its author saw
//!   it*: every event present when the author made a change (the state at the change's
//!   dependencies) must come before each event that change added. The server's state before a
//!   change may hold more: another device's concurrent append, which Automerge may place after
//!   this one (of two inserts after the same event, the one with the higher op id comes first).
//!   That event was not seen by the author, so it may follow. An event inserted before one the
//!   author had seen is refused.
//! - **Everything else a change did.** An author whose role may not edit the document (a
//!   supervisor on a referral) may only append events: apart from the new events, the document
//!   must be exactly as before — every value written by the same operation, every text the
//!   same. A typed comparison would miss a field the schema does not name, or a field replaced
//!   by an equal value (which would replace the object a field worker may be editing offline).
//!   Like every rule it compares states, so a later change that removes a field added by
//!   mistake makes the pair acceptable.
//!
//! Both read only the document and the changes' own dependencies, so the server and a phone
//! judge the same changes the same way.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ValueRef};

use super::attachment::SchemaLimits;
use super::document::{FieldDocument, Violation};
use super::rules::{Action, Author, check_change, edit_refused, permits};

/// Judges the changes `doc` holds beyond `before_heads`, made by `author`, against `before`
/// (the state at `before_heads` as [`FieldDocument::read_state`] returns it, or `None` when
/// the runtime counts an invalid stored document as empty). Returns the state they leave.
///
/// This is [`check_change`] plus what only the document shows: that new referral events come
/// after every event their author had seen, and that an author who may not edit the document
/// changed nothing but appended events. The server judges every peer's changes with it.
pub fn check_applied(
    doc: &Automerge,
    before_heads: &[ChangeHash],
    before: Option<&FieldDocument>,
    author: &Author,
) -> Result<Option<FieldDocument>, Vec<Violation>> {
    check_applied_with(doc, before_heads, before, author, &SchemaLimits::default())
}

/// [`check_applied`] under `limits` (the server's configured attachment maximum).
pub fn check_applied_with(
    doc: &Automerge,
    before_heads: &[ChangeHash],
    before: Option<&FieldDocument>,
    author: &Author,
    limits: &SchemaLimits,
) -> Result<Option<FieldDocument>, Vec<Violation>> {
    let after = FieldDocument::read_state_with(doc, limits)?;
    let mut violations = check_change(before, after.as_ref(), author)
        .err()
        .unwrap_or_default();
    if let Some(state) = &after {
        let events = events_list(doc);
        let kind = state.kind();
        let appends_only = before.is_some() && !permits(author.role, kind, Action::Edit);
        // Most changes are to visits and outreach notes by their authors: nothing to look at.
        if events.is_some() || appends_only {
            let changes = doc.get_changes(before_heads);
            let new = NewOps::index(&changes);
            if let Some(list) = &events {
                violations.extend(insertion_order(doc, list, &changes, &new));
            }
            if appends_only {
                let then = outside_new_events(doc, Some(before_heads), events.as_ref(), &new);
                let now = outside_new_events(doc, None, events.as_ref(), &new);
                if then != now {
                    violations.push(Violation {
                        path: String::new(),
                        message: edit_refused(author.role, kind),
                    });
                }
            }
        }
    }
    if violations.is_empty() {
        return Ok(after);
    }
    let mut seen = HashSet::new();
    violations.retain(|v| seen.insert((v.path.clone(), v.message.clone())));
    Err(violations)
}

fn events_list(doc: &Automerge) -> Option<ObjId> {
    match doc.get(ROOT, "events") {
        Ok(Some((automerge::Value::Object(ObjType::List), id))) => Some(id),
        _ => None,
    }
}

/// Which of the new changes made an operation: op ids are unique per actor, each change
/// holds a run of its actor's counters.
struct NewOps<'a> {
    runs: HashMap<&'a ActorId, Vec<(u64, u64, usize)>>,
}

impl<'a> NewOps<'a> {
    fn index(changes: &'a [Change]) -> Self {
        let mut runs: HashMap<&ActorId, Vec<(u64, u64, usize)>> = HashMap::new();
        for (i, change) in changes.iter().enumerate() {
            let start = change.start_op().get();
            runs.entry(change.actor_id()).or_default().push((
                start,
                start + change.len() as u64,
                i,
            ));
        }
        Self { runs }
    }

    /// The index of the new change that made `obj`, or `None` if an older one did.
    fn change_of(&self, obj: &ObjId) -> Option<usize> {
        let ObjId::Id(counter, actor, _) = obj else {
            return None;
        };
        self.runs
            .get(actor)?
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(counter))
            .map(|(_, _, i)| *i)
    }
}

/// Each event a new change put into the list (by insertion or by replacing an element) must
/// come after every event present at that change's dependencies.
fn insertion_order(
    doc: &Automerge,
    list: &ObjId,
    changes: &[Change],
    new: &NewOps<'_>,
) -> Vec<Violation> {
    let current: Vec<ObjId> = doc.list_range(list, ..).map(|item| item.id()).collect();
    let position: HashMap<&ObjId, usize> =
        current.iter().enumerate().map(|(i, id)| (id, i)).collect();
    // Per new change: the position, now, of the last event its author had seen.
    let mut last_seen: HashMap<usize, Option<usize>> = HashMap::new();
    let mut violations = Vec::new();
    for (i, id) in current.iter().enumerate() {
        let Some(change) = new.change_of(id) else {
            continue;
        };
        let last = *last_seen.entry(change).or_insert_with(|| {
            doc.list_range_at(list, .., changes[change].deps())
                .filter_map(|seen| position.get(&seen.id()).copied())
                .max()
        });
        if last.is_some_and(|last| last > i) {
            violations.push(Violation {
                path: format!("events[{i}]"),
                message: "events may only be added after every event their author had seen: \
                          this one was put before one of them"
                    .into(),
            });
        }
    }
    violations
}

/// Everything in the document (at `heads`, or now) except the events the new changes put
/// into `events`, as lines: each value's place, the operation that wrote it, and for scalars
/// and text the value. Only compared, never shown.
fn outside_new_events(
    doc: &Automerge,
    heads: Option<&[ChangeHash]>,
    events: Option<&ObjId>,
    new: &NewOps<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(ROOT, ObjType::Map)];
    while let Some((obj, kind)) = stack.pop() {
        match kind {
            ObjType::Map | ObjType::Table => {
                let items = match heads {
                    Some(h) => doc.map_range_at(&obj, .., h),
                    None => doc.map_range(&obj, ..),
                };
                for item in items {
                    let id = item.id();
                    out.push(format!("{obj}.{:?} {id} {:?}", item.key, item.value));
                    if let ValueRef::Object(t) = item.value {
                        stack.push((id, t));
                    }
                }
            }
            ObjType::List => {
                let items = match heads {
                    Some(h) => doc.list_range_at(&obj, .., h),
                    None => doc.list_range(&obj, ..),
                };
                for item in items {
                    let id = item.id();
                    if events == Some(&obj) && new.change_of(&id).is_some() {
                        continue;
                    }
                    out.push(format!("{obj}[] {id} {:?}", item.value));
                    if let ValueRef::Object(t) = item.value {
                        stack.push((id, t));
                    }
                }
            }
            ObjType::Text => {
                let text = match heads {
                    Some(h) => doc.text_at(&obj, h),
                    None => doc.text(&obj),
                };
                out.push(format!("{obj} {:?}", text.unwrap_or_default()));
            }
        }
    }
    out
}
