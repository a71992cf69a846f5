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
//! - **Everything a change touched.** An author whose role may not edit the document (a
//!   supervisor on a referral) may only append events: every operation of the change must
//!   insert a new element into `events` or write inside an object the change itself created.
//!   A typed comparison would miss a field the schema does not name, or a field replaced by an
//!   equal value.
//!
//! Both read only the document and the changes' own dependencies, so the server and a phone
//! judge the same changes the same way.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc};

use super::document::{DocKind, FieldDocument, Violation};
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
    let after = FieldDocument::read_state(doc)?;
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
            if let Some(list) = &events {
                violations.extend(insertion_order(doc, list, &changes));
            }
            if appends_only {
                violations.extend(only_appends(&changes, events.as_ref(), author, kind));
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

/// An operation's id: counter and actor.
type Id = (u64, ActorId);

fn id_of(obj: &ObjId) -> Option<Id> {
    match obj {
        ObjId::Root => None,
        ObjId::Id(counter, actor, _) => Some((*counter, actor.clone())),
    }
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
        let (counter, actor) = id_of(obj)?;
        self.runs
            .get(&actor)?
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&counter))
            .map(|(_, _, i)| *i)
    }
}

/// Each event a new change put into the list (by insertion or by replacing an element) must
/// come after every event present at that change's dependencies.
fn insertion_order(doc: &Automerge, list: &ObjId, changes: &[Change]) -> Vec<Violation> {
    let new = NewOps::index(changes);
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

/// For an author who may only append events: every operation inserts into `events` or writes
/// inside an object the new changes created.
fn only_appends(
    changes: &[Change],
    events: Option<&ObjId>,
    author: &Author,
    kind: DocKind,
) -> Option<Violation> {
    let events = events.and_then(id_of);
    let expanded: Vec<_> = changes.iter().map(Change::decode).collect();
    let mut made: HashSet<Id> = HashSet::new();
    for change in &expanded {
        let start = change.start_op.get();
        for (i, op) in change.operations.iter().enumerate() {
            if matches!(op.action, OpType::Make(_)) {
                made.insert((start + i as u64, change.actor_id.clone()));
            }
        }
    }
    let allowed = |obj: &ObjectId, insert: bool| match obj {
        ObjectId::Root => false,
        ObjectId::Id(OpId(counter, actor)) => {
            let id = (*counter, actor.clone());
            made.contains(&id) || (insert && events.as_ref() == Some(&id))
        }
    };
    let touches_more = expanded
        .iter()
        .flat_map(|c| &c.operations)
        .any(|op| !allowed(&op.obj, op.insert));
    touches_more.then(|| Violation {
        path: String::new(),
        message: edit_refused(author.role, kind),
    })
}
